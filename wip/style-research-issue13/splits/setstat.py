import json, sys, numpy as np
man = json.load(open('/work/shared/datasets/alpaca-eval-dev/manifest.json'))
def load(tag):
    cal = [json.loads(l) for l in open('/tmp/exp/cal_%s.jsonl' % tag)][:17]
    sus = {}
    for l in open('/tmp/exp/rep_%s.scores.jsonl' % tag):
        d = json.loads(l); sus.setdefault(d['model'], []).append(d['score'])
    return cal, {k: np.array(v) for k, v in sus.items()}
def auroc(p, n):
    p, n = np.asarray(p), np.asarray(n)
    return (np.sum(p[:, None] > n[None, :]) + 0.5 * np.sum(p[:, None] == n[None, :])) / (len(p) * len(n))
def at(pos, neg, stat, N, reps=20, seed=0):
    rng = np.random.default_rng(seed)
    if N is None: return auroc([stat(x) for x in pos], [stat(x) for x in neg])
    a = []
    for _ in range(reps):
        sub = lambda x: x[rng.choice(len(x), min(N, len(x)), replace=False)]
        a.append(auroc([stat(sub(x)) for x in pos], [stat(sub(x)) for x in neg]))
    return np.mean(a)
for tag in sys.argv[1:]:
    cal, sus = load(tag)
    ups = [np.array(c['scores']) for c in cal if c['family'] == 'openai']
    nul = [np.array(c['scores']) for c in cal if c['family'] != 'openai']
    pooled = np.sort(np.concatenate(nul))
    q = lambda p: np.quantile(pooled, p)
    pos = [sus[m] for m, v in man['models'].items() if 'suspect' in v and v['suspect']['kind'] == 'student']
    neg = [sus[m] for m, v in man['models'].items() if 'suspect' in v and v['suspect']['kind'] == 'independent']
    lo, hi = q(0.01), q(0.99)
    sd = pooled.std()
    stats = {
        'mean': np.mean,
        'median': np.median,
        'trim10': lambda x: np.mean(np.sort(x)[int(.1*len(x)):len(x)-int(.1*len(x))] if len(x) >= 10 else x),
        'clip1-99': lambda x: np.mean(np.clip(x, lo, hi)),
        'tanh': lambda x: np.mean(np.tanh(x / sd)),
        'pct': lambda x: np.mean(np.searchsorted(pooled, x) / len(pooled)),
        'frac>med': lambda x: np.mean(x > q(0.5)),
        'frac>q90': lambda x: np.mean(x > q(0.9)),
    }
    print(tag, 'val@10 val@50 val@all | dev@10 dev@50 dev@all')
    for k, f in stats.items():
        v = [at(ups, nul, f, N) for N in (10, 50, None)]
        d = [at(pos, neg, f, N) for N in (10, 50, None)]
        print('  %-9s' % k, ' '.join('%.3f' % x for x in v), '|', ' '.join('%.3f' % x for x in d))

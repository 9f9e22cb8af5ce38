"""Leave-one-family-out x held-out-prompt validation harness.

Fold (k, F, g): prompt fold k is held out (fit on the other two prompt folds), the non-upstream
family F is held out entirely, and the OpenAI group g (2 models) is held out. The fold's classifier
scores F's and g's answers to the held-out prompts. 3 x 6 x 4 = 72 fits per configuration.

Metrics (never using the dev suspects):
  lofo_sample_auroc   mean over folds of AUROC(g's responses vs F's responses)
  lofo_tpr1           mean over folds of TPR of g's responses at the 99th percentile of F's
  lofo_pair@N         AUROC over (unseen OpenAI model, unseen-family model) pairs of the mean of N
                      random held-out responses (20 draws, fixed seed); pairs pooled over folds
The *_al variants use prompt-aligned scores: score minus the per-prompt mean of the reference
answers (all known models not held out in the fold), each reference scored by a fold classifier
that did not see that reference model (the "free" LOFO table: mean over the fits that excluded it).
"""
import json, os, sys, time, hashlib
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from common import *

OUT = '/work/scratch/style/runs'
os.makedirs(OUT, exist_ok=True)


def sample_weights(models, y, balance):
    """Weights with mean 1. 'class': classes balanced (sklearn 'balanced'); 'model': every model
    the same total weight inside its class, classes balanced; 'family': upstream models equal
    inside the upstream class, negative families equal inside the negative class, models equal
    inside a family; 'none'."""
    n = len(y)
    w = np.ones(n)
    if balance == 'none':
        return w
    for c in np.unique(y):
        idx = np.where(y == c)[0]
        if balance == 'class':
            w[idx] = 1.0 / len(idx)
        elif balance == 'model':
            ms = models[idx]
            um = np.unique(ms)
            for m in um:
                j = idx[ms == m]
                w[j] = 1.0 / (len(um) * len(j))
        elif balance == 'family':
            ms = models[idx]
            fams = np.array([KNOWN[m] if c == 0 else m for m in ms])  # upstream: each model its own unit
            uf = np.unique(fams)
            for f in uf:
                jf = idx[fams == f]
                umf = np.unique(models[jf])
                for m in umf:
                    j = jf[models[jf] == m]
                    w[j] = 1.0 / (len(uf) * len(umf) * len(j))
    return w * n / w.sum()


def fit_score(cfg, tr, ev, variant='orig', ev_variant=None):
    """Fit on rows `tr`, return scores of rows `ev` (upstream log-odds)."""
    rows = np.r_[tr, ev]
    Xall = design(cfg['spec'], tr, variant, rows)
    Xtr = Xall[:len(tr)]
    if ev_variant and ev_variant != variant:
        Xev = design_with_train_idf(cfg['spec'], tr, ev, variant, ev_variant)
    else:
        Xev = Xall[len(tr):]
    # drop columns unseen in training (their weights are 0 anyway): lbfgs cost is O(columns)
    keep = np.unique(Xtr.indices)
    Xtr, Xev = Xtr[:, keep], Xev[:, keep]
    models = MODEL[tr]
    obj = cfg.get('objective', 'binary')
    if obj == 'binary':
        y = (FAM[tr] == UP).astype(int)
        w = sample_weights(models, y, cfg.get('balance', 'class'))
        clf = LogisticRegression(C=cfg.get('C', 4.0), max_iter=cfg.get('max_iter', 3000), tol=1e-4)
        clf.fit(Xtr, y, sample_weight=w)
        return clf.decision_function(Xev)
    # multinomial over models or families; score = log P(upstream)/P(rest)
    lab = models if obj == 'multi_model' else FAM[tr]
    classes, yi = np.unique(lab, return_inverse=True)
    w = np.ones(len(yi))
    for c in range(len(classes)):
        w[yi == c] = 1.0 / (yi == c).sum()
    w *= len(yi) / w.sum()
    clf = LogisticRegression(C=cfg.get('C', 4.0), max_iter=cfg.get('max_iter', 500), tol=1e-4)
    clf.fit(Xtr, yi, sample_weight=w)
    Z = clf.decision_function(Xev)
    upc = np.array([(KNOWN[c] if obj == 'multi_model' else c) == UP for c in classes])
    from scipy.special import logsumexp
    return logsumexp(Z[:, upc], axis=1) - logsumexp(Z[:, ~upc], axis=1)


def design_with_train_idf(spec, tr, ev, variant, ev_variant):
    """Design matrix of the `ev_variant` texts of rows `ev`, with idf/min_df statistics of the
    `variant` train rows (a profile trained on original text scoring desensitized text)."""
    mats = []
    for blocks, wt, kw in spec:
        Xa = sp.hstack([block(b, variant)[tr] for b in blocks]).tocsr()
        Xb = sp.hstack([block(b, ev_variant)[ev] for b in blocks]).tocsr()
        # stack train rows of variant on top, transform jointly, keep the ev_variant part
        X = sp.vstack([Xa, Xb]).tocsr()
        T = tfidf(X, np.arange(len(tr)), **kw)[len(tr):]
        mats.append(T * wt)
    return sp.hstack(mats).tocsr()


MODE = os.environ.get('LOFO_MODE', 'rot')


def folds(mode=None):
    """'full': every (prompt fold, family, OpenAI group) = 72 fits. 'rot' (screening, 18 fits):
    family F_i is paired with OpenAI group (i + k) mod 4 in prompt fold k, so every family meets 3
    of the 4 groups over the 3 prompt folds."""
    mode = mode or MODE
    if mode == 'sib':
        # sibling-known validation: one model of a multi-model non-upstream family held out, its
        # siblings stay in training (like claude-2.1 / Llama-3-8B on the dev bench)
        sib = [m for m in sorted(KNOWN) if KNOWN[m] != UP and sum(KNOWN[x] == KNOWN[m] for x in KNOWN) > 1]
        for k in range(3):
            for mi, m in enumerate(sib):
                gi = (mi + k) % 4
                yield k, 'model:' + m, gi, UP_GROUPS[gi]
        return
    for k in range(3):
        for fi, F in enumerate(NULL_FAMS):
            for gi, g in enumerate(UP_GROUPS):
                if mode == 'full' or gi == (fi + k) % 4:
                    yield k, F, gi, g


def held_neg(unit):
    """Held-out negative models of a fold unit (a family name, or 'model:NAME')."""
    if unit.startswith('model:'):
        return [unit[6:]]
    return sorted(m for m in KNOWN if KNOWN[m] == unit)


def run(name, cfg, n_jobs=1, variant='orig', ev_variant=None, force=False):
    """All 72 fold fits for a config; caches {fold: (rows, scores)} to runs/NAME.npz."""
    path = '%s/%s.%s.npz' % (OUT, name, MODE)
    if os.path.exists(path) and not force:
        z = np.load(path, allow_pickle=True)
        return z['res'].item()
    known = sorted(KNOWN)
    tasks = []
    for k, F, gi, g in folds():
        trp = sum((PROMPT_FOLDS[j] for j in range(3) if j != k), [])
        out_models = set(g) | set(held_neg(F))
        tr = rows_of([m for m in known if m not in out_models], trp)
        ev = rows_of(known, PROMPT_FOLDS[k])  # score every known model's held-out answers
        tasks.append(((k, F, gi), tr, ev))
    t0 = time.time()

    def one(t):
        key, tr, ev = t
        return key, ev, fit_score(cfg, tr, ev, variant, ev_variant).astype(np.float32)
    if n_jobs > 1:
        from joblib import Parallel, delayed
        outs = Parallel(n_jobs=n_jobs)(delayed(one)(t) for t in tasks)
    else:
        outs = [one(t) for t in tasks]
    res = {key: (ev, s) for key, ev, s in outs}
    np.savez(path, res=np.array(res, dtype=object), cfg=json.dumps(cfg, default=str))
    print('%s: %d fits in %.0fs' % (name, len(tasks), time.time() - t0), file=sys.stderr, flush=True)
    return res


def lofo_table(res):
    """LOFO score of every known model's held-out answer: mean over the fold fits that excluded
    the model (non-upstream model: its family's 4 folds; upstream model: its group's 6 folds)."""
    acc = defaultdict(list)
    for (k, F, gi), (ev, s) in res.items():
        for i, x in zip(ev, s):
            m = MODEL[i]
            if m in held_neg(F) or m in UP_GROUPS[gi]:
                acc[i].append(x)
    return {i: float(np.mean(v)) for i, v in acc.items()}


def metrics(res, aligned=False, ns=(10, 50, None), seed=0):
    table = lofo_table(res) if aligned else None
    aucs, tprs = [], []
    pairs = {n: [] for n in ns}
    rng = np.random.default_rng(seed)
    for (k, F, gi), (ev, s) in sorted(res.items()):
        s = s.astype(np.float64)
        if aligned:
            held = set(UP_GROUPS[gi]) | set(held_neg(F))
            ref = defaultdict(list)
            for i in table:
                if PID[i] in set(PROMPT_FOLDS[k]) and MODEL[i] not in held:
                    ref[PID[i]].append(table[i])
            refm = {p: np.mean(v) for p, v in ref.items()}
            s = s - np.array([refm[PID[i]] for i in ev])
        mods = MODEL[ev]
        pos_m = UP_GROUPS[gi]
        neg_m = held_neg(F)
        pos = np.concatenate([s[mods == m] for m in pos_m])
        neg = np.concatenate([s[mods == m] for m in neg_m])
        aucs.append(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
        tprs.append(float((pos > np.quantile(neg, 0.99)).mean()))
        per = {m: s[mods == m] for m in pos_m + neg_m}
        for n in ns:
            for _ in range(20 if n else 1):
                mean = {m: (v[rng.choice(len(v), min(n, len(v)), replace=False)].mean() if n else v.mean())
                        for m, v in per.items()}
                for a in pos_m:
                    for b in neg_m:
                        pairs[n].append(1.0 if mean[a] > mean[b] else (0.5 if mean[a] == mean[b] else 0.0))
    sfx = '_al' if aligned else ''
    out = {'lofo_sample_auroc' + sfx: round(float(np.mean(aucs)), 4),
           'lofo_tpr1' + sfx: round(float(np.mean(tprs)), 4)}
    for n in ns:
        out['lofo_pair@%s%s' % (n or 'all', sfx)] = round(float(np.mean(pairs[n])), 4)
    return out


def per_fold_auc(res):
    """Per prompt-fold breakdown of the sample AUROC (to see the spread)."""
    out = defaultdict(list)
    for (k, F, gi), (ev, s) in res.items():
        mods = MODEL[ev]
        pos = np.concatenate([s[mods == m] for m in UP_GROUPS[gi]])
        neg = np.concatenate([s[mods == m] for m in held_neg(F)])
        out[k].append(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
    return {k: round(float(np.mean(v)), 4) for k, v in sorted(out.items())}


# ---------------------------------------------------------------- configurations
def tf(min_df=1, idf=True, fold_bits=None):
    return dict(min_df=min_df, idf=idf, fold_bits=fold_bits)

CHAR25 = ['cwb2', 'cwb3', 'cwb4', 'cwb5']
BASE_SPEC = [(['w12'], 1, tf(2)), (CHAR25, 1, tf(3))]
CONFIGS = {
    # the baseline's recipe (vocab emulated by 2^20 hashing + min_df from the fold's train rows)
    'base': dict(spec=BASE_SPEC, objective='binary', balance='class', C=4),
    'base_noidf': dict(spec=[(['w12'], 1, tf(2, idf=False)), (CHAR25, 1, tf(3, idf=False))], C=4),
    'base_hash18': dict(spec=[(['w12'], 1, tf(1, fold_bits=18)), (CHAR25, 1, tf(1, fold_bits=18))], C=4),
    'w12': dict(spec=[(['w12'], 1, tf(2))], C=4),
    'char25': dict(spec=[(CHAR25, 1, tf(3))], C=4),
    'rust_w12_18': dict(spec=[(['rw12'], 1, tf(1, idf=False, fold_bits=18))], C=4),
    'base_model_bal': dict(spec=BASE_SPEC, balance='model', C=4),
    'base_family_bal': dict(spec=BASE_SPEC, balance='family', C=4),
    'base_C1': dict(spec=BASE_SPEC, C=1),
    'base_C16': dict(spec=BASE_SPEC, C=16),
    'base_fmt_first': dict(spec=BASE_SPEC + [(['fmt'], 0.5, tf(2)), (['first'], 0.5, tf(2))], C=4),
    'base_fwg': dict(spec=BASE_SPEC + [(['fwg'], 0.5, tf(2))], C=4),
    'base_fmt': dict(spec=BASE_SPEC + [(['fmt'], 0.5, tf(2))], C=4),
    'base_first': dict(spec=BASE_SPEC + [(['first'], 0.5, tf(2))], C=4),
    'fmt_first': dict(spec=[(['fmt'], 1, tf(2)), (['first'], 1, tf(2))], C=4),
    'fmt': dict(spec=[(['fmt'], 1, tf(2))], C=4),
    'first': dict(spec=[(['first'], 1, tf(2))], C=4),
    'base_fmt_lt': dict(spec=BASE_SPEC + [(['fmt_lt'], 0.5, tf(2))], C=4),
    'base_fmt_cnt': dict(spec=BASE_SPEC + [(['fmt_cnt'], 0.5, tf(2))], C=4),
    'base_fmt_len': dict(spec=BASE_SPEC + [(['fmt_len'], 0.5, tf(2))], C=4),
    'base_fmt_nolen': dict(spec=BASE_SPEC + [(['fmt_lt', 'fmt_cnt', 'fmt_end'], 0.5, tf(2))], C=4),
    'sent': dict(spec=[(['sent'], 1, tf(2))], C=4),
    'first_sent': dict(spec=[(['first'], 1, tf(2)), (['sent'], 1, tf(2))], C=4),
    'first_fmt_sent': dict(spec=[(['first'], 1, tf(2)), (['fmt'], 1, tf(2)), (['sent'], 1, tf(2))], C=4),
    'first6': dict(spec=[(['first6'], 1, tf(2))], C=4),
    'first_C1': dict(spec=[(['first'], 1, tf(2))], C=1),
    'first_C16': dict(spec=[(['first'], 1, tf(2))], C=16),
    'first_noidf': dict(spec=[(['first'], 1, tf(2, idf=False))], C=4),
    'first_w03': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.3, tf(2))], C=4),
    'first_fmt_w03': dict(spec=[(['first'], 1, tf(2)), (['fmt'], 1, tf(2)), (['w12'], 0.3, tf(2))], C=4),
    'first_fmt_base03': dict(spec=[(['first'], 1, tf(2)), (['fmt'], 1, tf(2)), (['w12'], 0.3, tf(2)), (CHAR25, 0.3, tf(3))], C=4),
    'first_w05': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.5, tf(2))], C=4),
    'first_w1': dict(spec=[(['first'], 1, tf(2)), (['w12'], 1, tf(2))], C=4),
    'first_rw05': dict(spec=[(['first'], 1, tf(2)), (['rw12'], 0.5, tf(2))], C=4),
    'first_base05': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.5, tf(2)), (CHAR25, 0.5, tf(3))], C=4),
    'first_sent_w05': dict(spec=[(['first'], 1, tf(2)), (['sent'], 0.5, tf(2)), (['w12'], 0.5, tf(2))], C=4),
    'first_w05_mm': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.5, tf(2))], objective='multi_model', C=4),
    'first_w05_mf': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.5, tf(2))], objective='multi_family', C=4),
    'first_w05_mbal': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.5, tf(2))], balance='model', C=4),
    'first_w05_fbal': dict(spec=[(['first'], 1, tf(2)), (['w12'], 0.5, tf(2))], balance='family', C=4),
    'base_multi_model': dict(spec=BASE_SPEC, objective='multi_model', C=4),
    'base_multi_family': dict(spec=BASE_SPEC, objective='multi_family', C=4),
}


if __name__ == '__main__':
    nj = int(os.environ.get('NJ', '2'))
    for nm in sys.argv[1:]:
        res = run(nm, CONFIGS[nm], n_jobs=nj)
        r = {'config': nm, 'mode': MODE, 'fits': len(res), **metrics(res), **metrics(res, aligned=True), 'per_prompt_fold_auc': per_fold_auc(res)}
        print(json.dumps(r), flush=True)
        with open('/work/scratch/style/results_lofo.jsonl', 'a') as f:
            f.write(json.dumps(r) + '\n')

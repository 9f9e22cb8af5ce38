"""The dev bench protocol (shared/datasets/README.md) for a config of lofo.py: fit on known
models' train-prompt answers, score suspects' test-prompt answers. With aligned=True the
per-response score is prompt-aligned against the known models' test-prompt answers, each scored
by a fit that left the answer's family out (upstream models: left out one at a time) — the LOFO
calibration a profile would store. Suspect labels are used only for the metrics.
Usage: devbench.py CONFIG [aligned]"""
import sys, json, os
import numpy as np
from sklearn.metrics import roc_auc_score
from common import *
import lofo


def lofo_calibration(cfg, name, scheme='lofo', variant='orig'):
    """Held-out-model scores of every known model's test-prompt answers: scheme 'lofo' leaves the
    model's whole family out (upstream models one at a time), 'lomo' leaves the model out."""
    path = '%s/%s.cal_%s.npz' % (lofo.OUT, name, scheme)
    if os.path.exists(path):
        z = np.load(path)
        return dict(zip(z['rows'], z['s']))
    known = sorted(KNOWN)
    units = []
    for m in known:
        if scheme == 'lomo' or KNOWN[m] == UP:
            units.append([m])
        elif [x for x in known if KNOWN[x] == KNOWN[m]] not in units:
            units.append([x for x in known if KNOWN[x] == KNOWN[m]])
    rows, s = [], []
    for u in units:
        tr = rows_of([m for m in known if m not in u], TRAIN_P)
        ev = rows_of(u, TEST_P)
        rows.append(ev)
        s.append(lofo.fit_score(cfg, tr, ev, variant))
    rows, s = np.concatenate(rows), np.concatenate(s)
    np.savez(path, rows=rows, s=s)
    return dict(zip(rows, s))


def bench(cfg, name, aligned=False, variant='orig', scheme='lofo'):
    known = sorted(KNOWN)
    tr = rows_of(known, TRAIN_P)
    sus = sorted(SUSP)
    ev = rows_of(sus, TEST_P)
    s = lofo.fit_score(cfg, tr, ev, variant, ev_variant=variant).astype(np.float64)
    if aligned:
        cal = lofo_calibration(cfg, name, scheme)
        ref = defaultdict(list)
        for i, x in cal.items():
            ref[PID[i]].append(x)
        s = s - np.array([np.mean(ref[PID[i]]) for i in ev])
    mods = MODEL[ev]
    sc = {m: s[mods == m] for m in sus}
    pos_up = [m for m in sus if SUSP[m]['kind'] == 'upstream']
    pos_st = [m for m in sus if SUSP[m]['kind'] == 'student' and SUSP[m]['teacher'] == UP]
    neg = [m for m in sus if SUSP[m]['teacher'] != UP]
    cat = lambda ms: np.concatenate([sc[m] for m in ms])
    negs = cat(neg)
    out = {}
    for nm, ms in [('upstream', pos_up), ('student', pos_st)]:
        p = cat(ms)
        out['sample_auroc_' + nm] = round(roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(negs))], np.r_[p, negs]), 4)
        out['sample_tpr_at_1fpr_' + nm] = round(float((p > np.quantile(negs, 0.99)).mean()), 4)
    rng = np.random.default_rng(0)
    for n in [10, 50, None]:
        aucs = []
        for rep in range(20 if n else 1):
            vals = [sc[m][rng.choice(len(sc[m]), min(n, len(sc[m])), replace=False)].mean() if n else sc[m].mean()
                    for m in pos_st + neg]
            aucs.append(roc_auc_score([1] * len(pos_st) + [0] * len(neg), vals))
        out['suspect_auroc@%s' % (n or 'all')] = round(float(np.mean(aucs)), 4)
    out['suspect_means'] = {m: round(float(sc[m].mean()), 3) for m in sus}
    return out


if __name__ == '__main__':
    name = sys.argv[1]
    al = len(sys.argv) > 2 and sys.argv[2] == 'aligned'
    print(json.dumps({'config': name, 'aligned': al, **bench(lofo.CONFIGS[name], name, al)}))

"""Untrained single cues under the LOFO pairing (same folds as lofo.py 'rot'): how far does each
raw cue alone separate unseen OpenAI models from unseen families? (direction: higher = upstream)"""
import numpy as np, re
from sklearn.metrics import roc_auc_score
from common import *
import lofo
cues = {
    'log_len': lambda t: np.log1p(len(t)),
    'bold': lambda t: t.count('**'),
    'headers': lambda t: len(re.findall(r'(?m)^#{1,6} ', t)),
    'numbered': lambda t: len(re.findall(r'(?m)^\s*\d{1,3}[.)] ', t)),
    'bullets': lambda t: len(re.findall(r'(?m)^\s*[-*•] ', t)),
    'newlines': lambda t: t.count('\n'),
}
vals = {c: np.array([f(t) for t in TEXTS], float) for c, f in cues.items()}
for c, v in vals.items():
    aucs, pairs = [], []
    for k, F, gi, g in lofo.folds('full'):
        ps = set(PROMPT_FOLDS[k])
        sel = lambda m: v[(MODEL == m) & np.isin(PID, list(ps))]
        pos = np.concatenate([sel(o) for o in g]); neg = np.concatenate([sel(m) for m in lofo.held_neg(F)])
        aucs.append(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
        for o in g:
            for m in lofo.held_neg(F):
                pairs.append(float(sel(o).mean() > sel(m).mean()))
    print('%-10s sample_auroc %.3f  pair@all %.3f' % (c, np.mean(aucs), np.mean(pairs)))

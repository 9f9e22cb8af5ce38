"""Per (held-out OpenAI model, held-out family) sample AUROC and mean-score difference for a run."""
import sys, numpy as np
from collections import defaultdict
from sklearn.metrics import roc_auc_score
from common import *
import lofo
res = lofo.run(sys.argv[1], lofo.CONFIGS[sys.argv[1]])
A = defaultdict(list); P = defaultdict(list)
for (k, F, gi), (ev, s) in res.items():
    mods = MODEL[ev]
    neg = np.concatenate([s[mods == m] for m in lofo.held_neg(F)])
    for o in UP_GROUPS[gi]:
        pos = s[mods == o]
        A[(o, F)].append(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
fams = NULL_FAMS
print('%-26s' % 'openai \\ family' + ''.join('%12s' % f[:11] for f in fams) + '    mean')
for o in UP_MODELS:
    row = [np.mean(A[(o, F)]) if A[(o, F)] else np.nan for F in fams]
    print('%-26s' % o + ''.join('%12.3f' % v for v in row) + '   %.3f' % np.nanmean(row))
print('%-26s' % 'mean' + ''.join('%12.3f' % np.nanmean([np.mean(A[(o, F)]) for o in UP_MODELS if A[(o, F)]]) for F in fams))

"""Top weights of the 'first' block classifier fitted on all known models' train-prompt answers
(feature names recovered by re-analysing the texts)."""
import numpy as np
from collections import defaultdict, Counter
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction.text import HashingVectorizer
from common import *
blk = 'first'
tr = rows_of(sorted(KNOWN), TRAIN_P)
X = design([([blk], 1, dict(min_df=2))], tr, rows=tr)
y = (FAM[tr] == UP).astype(int)
clf = LogisticRegression(C=4, max_iter=3000, class_weight='balanced').fit(X, y)
w = clf.coef_.ravel()
names = defaultdict(Counter)
from sklearn.utils import murmurhash3_32
an = BLOCKS[blk]['analyzer']
for i in tr:
    for f in an(TEXTS[i]):
        names[abs(murmurhash3_32(f, seed=0)) % NFEAT][f] += 1
order = np.argsort(w)
def show(idx):
    for j in idx:
        nm = names[j].most_common(1)[0][0] if names[j] else '?'
        up = np.mean(X[:, j].toarray().ravel()[y == 1] > 0); dn = np.mean(X[:, j].toarray().ravel()[y == 0] > 0)
        print('  %+.2f  %-45r  in %.3f of openai, %.3f of others' % (w[j], nm, up, dn))
print('most upstream-like'); show(order[::-1][:30])
print('least upstream-like'); show(order[:20])

import time
from common import *
import lofo
t=time.time(); cfg=lofo.CONFIGS['base']
tr=rows_of(sorted(KNOWN),TRAIN_P)
X=design(cfg['spec'],tr); print('design',time.time()-t, X.shape, X[tr].nnz)
Xtr=X[tr]; keep=np.unique(Xtr.indices); Xtr=Xtr[:,keep]; print(Xtr.shape)
t=time.time()
from sklearn.linear_model import LogisticRegression
y=(FAM[tr]==UP).astype(int)
clf=LogisticRegression(C=4,max_iter=3000,class_weight='balanced').fit(Xtr,y); print('fit lbfgs',time.time()-t, clf.n_iter_)

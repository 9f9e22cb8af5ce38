import sys, time
from common import *
for b in (sys.argv[2:] or BLOCKS):
    t=time.time(); X=block(b, sys.argv[1]); print(b, X.shape, X.nnz, '%.1fs'%(time.time()-t), flush=True)

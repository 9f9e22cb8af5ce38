"""Cache of 'fit without these models' score vectors: scores(config, excluded, k) is the upstream
score of EVERY answer (known models and suspects) to the prompts of prompt fold k, by a classifier
fitted on the other two prompt folds' answers of the known models minus `excluded`.
Every calibration scheme (LOMO, LOFO, nested LOFO, dev bench) reads from it."""
import os, sys, json, hashlib
import numpy as np
from common import *
import lofo

CDIR = '/work/scratch/style/runs/fits'
os.makedirs(CDIR, exist_ok=True)
EVAL_ROWS = {k: rows_of(sorted(set(MODEL)), PROMPT_FOLDS[k]) for k in range(3)}


def key(cfg_name, excluded, k, variant='orig'):
    ex = ','.join(sorted(excluded))
    h = hashlib.md5(ex.encode()).hexdigest()[:12]
    return '%s/%s.k%d.%s.%s.npy' % (CDIR, cfg_name, k, variant, h)


def scores(cfg_name, excluded=(), k=0, variant='orig', compute=True):
    p = key(cfg_name, excluded, k, variant)
    if os.path.exists(p):
        return np.load(p)
    if not compute:
        return None
    cfg = lofo.CONFIGS[cfg_name]
    trp = sum((PROMPT_FOLDS[j] for j in range(3) if j != k), [])
    tr = rows_of([m for m in sorted(KNOWN) if m not in set(excluded)], trp)
    s = lofo.fit_score(cfg, tr, EVAL_ROWS[k], variant, ev_variant=variant).astype(np.float32)
    np.save(p, s)
    return s


def ensure(cfg_name, exclusions, k=0, n_jobs=2, variant='orig'):
    todo = [e for e in exclusions if not os.path.exists(key(cfg_name, e, k, variant))]
    todo = list(dict.fromkeys(tuple(sorted(e)) for e in todo))
    if todo:
        from joblib import Parallel, delayed
        Parallel(n_jobs=n_jobs)(delayed(scores)(cfg_name, e, k, variant) for e in todo)
    return {tuple(sorted(e)): scores(cfg_name, e, k, variant) for e in exclusions}


def fam_models(F):
    return tuple(sorted(m for m in KNOWN if KNOWN[m] == F))


def exclusions_for(scheme):
    """Exclusion sets needed by a scheme (prompt fold k)."""
    fams = NULL_FAMS
    out = [()]
    if scheme in ('lomo', 'all'):
        out += [(m,) for m in sorted(KNOWN)]
    if scheme in ('lofo', 'all'):
        out += [fam_models(F) for F in fams] + [(m,) for m in UP_MODELS]
    if scheme in ('nested', 'all'):
        # outer: family F and OpenAI group g out
        for F in fams:
            for g in UP_GROUPS:
                out.append(fam_models(F) + tuple(g))
        # inner LOFO null: F and another family F' out; inner LOMO null: F and one model out
        for i, F in enumerate(fams):
            for G in fams[i + 1:]:
                out.append(fam_models(F) + fam_models(G))
            for m in sorted(KNOWN):
                if KNOWN[m] != UP and KNOWN[m] != F:
                    out.append(fam_models(F) + (m,))
    return list(dict.fromkeys(tuple(sorted(e)) for e in out))


if __name__ == '__main__':
    cfg = sys.argv[1]
    scheme = sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    ex = exclusions_for(scheme)
    print(cfg, scheme, 'fits needed', len(ex), 'cached', sum(os.path.exists(key(cfg, e, k)) for e in ex), flush=True)
    ensure(cfg, ex, k, n_jobs=int(os.environ.get('NJ', '2')))
    print('done', flush=True)

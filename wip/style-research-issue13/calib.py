"""Q2: leave-one-model-out vs leave-one-family-out calibration, on prompt fold 0 (the manifest's
train/test split; known models only, never the suspects).

Part A (the dev profile): per-model mean scores of the known models' test answers under LOMO and
LOFO, the per-text threshold at 1% FPR, the set-level null (model-level random effects as in
calibration.rs, and family-level random effects), the verdict's error check.
Part B (nested, validity for an unseen family): for each non-upstream family F, the profile fitted
without F is calibrated with the remaining known models only (inner LOMO or inner LOFO); its
nominal 1%/5% per-text thresholds and its set-level null are then applied to F's answers.
Usage: calib.py CONFIG [--aligned]"""
import sys, json
import numpy as np
from scipy import stats
from common import *
import fits

K = 0
ROWS = fits.EVAL_ROWS[K]
RM = MODEL[ROWS]
RP = PID[ROWS]
ALPHA = 0.01


def model_scores(vec, m):
    return vec[RM == m]


def fam_models(F):
    return sorted(m for m in KNOWN if KNOWN[m] == F)


def set_null(units):
    """units: list of (name, scores_of_each_model_in_unit) -> random-effects summary. A unit is a
    model (one array) or a family (list of arrays: its models' means averaged, within variance
    pooled)."""
    means, var, ns = [], [], []
    for _, arrs in units:
        means.append(np.mean([a.mean() for a in arrs]))
        var.append(np.mean([a.var(ddof=1) for a in arrs]))
        ns.append(np.mean([len(a) for a in arrs]) * len(arrs))
    means, var, ns = map(np.array, (means, var, ns))
    j = len(means)
    mu = means.mean()
    mean_var = means.var(ddof=1)
    sigma2 = var.mean()
    noise = (var / ns).mean()
    tau2 = max(mean_var - noise, 0.0)
    return dict(J=j, mu=mu, tau2=tau2, sigma2=sigma2, mean_var=mean_var)


def p_value(null, stat, n):
    sd = np.sqrt(null['tau2'] + null['sigma2'] / n + null['mean_var'] / null['J'])
    return float(stats.t.sf((stat - null['mu']) / sd, null['J'] - 1))


def rank_p(null_means, stat):
    """Permutation-style p: (1 + #null units at least as high) / (J + 1)."""
    return (1 + np.sum(np.asarray(null_means) >= stat)) / (len(null_means) + 1)


def align(vec_by_model, refs_by_model):
    """Prompt-aligned scores: each answer minus the mean of the OTHER reference answers to the same
    prompt. refs_by_model: model -> score vector over ROWS (reference scores)."""
    out = {}
    pid_idx = defaultdict(list)
    for i, p in enumerate(RP):
        pid_idx[p].append(i)
    ref_sum = defaultdict(float)
    ref_n = defaultdict(int)
    ref_own = {}
    for m, v in refs_by_model.items():
        for i in np.where(RM == m)[0]:
            ref_sum[RP[i]] += v[i]
            ref_n[RP[i]] += 1
            ref_own[i] = v[i]
    for m, v in vec_by_model.items():
        idx = np.where(RM == m)[0]
        a = []
        for i in idx:
            s, n = ref_sum[RP[i]], ref_n[RP[i]]
            if i in ref_own:
                s, n = s - ref_own[i], n - 1
            a.append(v[i] - s / n)
        out[m] = np.array(a)
    return out


def tables(cfg):
    """LOMO and LOFO score vectors per known model (full-profile calibration, prompt fold 0)."""
    lomo, lofo = {}, {}
    for m in sorted(KNOWN):
        v = fits.scores(cfg, (m,), K)
        lomo[m] = v
        lofo[m] = v if KNOWN[m] == UP else fits.scores(cfg, tuple(fam_models(KNOWN[m])), K)
    return lomo, lofo


def part_a(cfg, aligned=False):
    lomo, lofo = tables(cfg)
    out = {}
    rows = []
    for scheme, tab in (('LOMO', lomo), ('LOFO', lofo)):
        sc = {m: model_scores(tab[m], m) for m in KNOWN}
        if aligned:
            al = align(tab, tab)
            sc = {m: al[m] for m in KNOWN}
        nullm = [m for m in sorted(KNOWN) if KNOWN[m] != UP]
        pooled = np.concatenate([sc[m] for m in nullm])
        thr = np.quantile(pooled, 0.99)
        model_units = [(m, [sc[m]]) for m in nullm]
        fam_units = [(F, [sc[m] for m in fam_models(F)]) for F in NULL_FAMS]
        res = {'per_model_mean': {m: round(float(sc[m].mean()), 3) for m in sorted(KNOWN)},
               'threshold_1pct': round(float(thr), 3)}
        for unit_name, units in (('model', model_units), ('family', fam_units)):
            nl = set_null(units)
            # error check: each null unit left out, tested against the others
            flagged, ps = [], {}
            for i, (u, arrs) in enumerate(units):
                others = units[:i] + units[i + 1:]
                n2 = set_null(others)
                stat = np.mean([a.mean() for a in arrs])
                n = int(np.mean([len(a) for a in arrs]))
                ps[u] = round(p_value(n2, stat, n), 4)
                if ps[u] < ALPHA:
                    flagged.append(u)
            up_ps = {o: round(p_value(nl, sc[o].mean(), len(sc[o])), 4) for o in UP_MODELS}
            up_rank = {o: round(rank_p([np.mean([a.mean() for a in arrs]) for _, arrs in units], sc[o].mean()), 3) for o in UP_MODELS}
            res['null_' + unit_name] = {'J': nl['J'], 'mu': round(nl['mu'], 3), 'tau': round(np.sqrt(nl['tau2']), 3),
                                        'sigma': round(np.sqrt(nl['sigma2']), 3),
                                        'null_units_flagged': '%d/%d' % (len(flagged), len(units)),
                                        'null_unit_p': ps,
                                        'upstream_flagged': '%d/%d' % (sum(p < ALPHA for p in up_ps.values()), len(up_ps)),
                                        'upstream_p': up_ps, 'upstream_rank_p': up_rank,
                                        'smallest_rank_p': round(1 / (len(units) + 1), 3)}
        out[scheme] = res
    return out


def part_b(cfg, aligned=False):
    """Nested: for each held-out family F, inner calibration from the remaining known models."""
    out = {}
    for F in NULL_FAMS:
        fm = tuple(fam_models(F))
        outer = fits.scores(cfg, fm, K)
        rest_null = [m for m in sorted(KNOWN) if KNOWN[m] != UP and KNOWN[m] != F]
        inner = {}
        inner['LOMO'] = {m: fits.scores(cfg, tuple(sorted(fm + (m,))), K) for m in rest_null}
        inner['LOFO'] = {m: fits.scores(cfg, tuple(sorted(fm + tuple(fam_models(KNOWN[m])))), K) for m in rest_null}
        # inner upstream models: scored leaving their OpenAI group (and F) out
        up_inner = {}
        for g in UP_GROUPS:
            v = fits.scores(cfg, tuple(sorted(fm + tuple(g))), K)
            for o in g:
                up_inner[o] = v
        res = {}
        for scheme in ('LOMO', 'LOFO'):
            tab = dict(inner[scheme])
            tab.update(up_inner)
            if aligned:
                refs = tab
                al_null = align(tab, refs)
                # F's answers aligned against ALL inner references (F is never among them)
                al_F = align({m: outer for m in fm}, refs)
                null_sc = {m: al_null[m] for m in rest_null}
                f_sc = al_F
            else:
                null_sc = {m: model_scores(tab[m], m) for m in rest_null}
                f_sc = {m: model_scores(outer, m) for m in fm}
            pooled = np.concatenate([null_sc[m] for m in rest_null])
            fsc = np.concatenate([f_sc[m] for m in fm])
            r = {}
            for a in (0.01, 0.05):
                thr = np.quantile(pooled, 1 - a)
                r['realized_fpr@%g' % a] = round(float((fsc > thr).mean()), 3)
            units = ([(m, [null_sc[m]]) for m in rest_null] if scheme == 'LOMO'
                     else [(G, [null_sc[m] for m in fam_models(G)]) for G in NULL_FAMS if G != F])
            nl = set_null(units)
            stat = np.mean([f_sc[m].mean() for m in fm])
            n = len(f_sc[fm[0]])
            r['set_p'] = round(p_value(nl, stat, n), 4)
            r['J'] = nl['J']
            r['F_mean'] = round(float(stat), 3)
            r['null_mu'] = round(float(nl['mu']), 3)
            r['null_tau'] = round(float(np.sqrt(nl['tau2'])), 3)
            r['rank_p'] = round(rank_p([np.mean([a.mean() for a in arrs]) for _, arrs in units], stat), 3)
            res[scheme] = r
        out[F] = res
    return out


if __name__ == '__main__':
    cfg = sys.argv[1]
    al = '--aligned' in sys.argv
    A = part_a(cfg, al)
    B = part_b(cfg, al)
    print(json.dumps({'config': cfg, 'aligned': al, 'A': A, 'B': B}, indent=1, default=float))

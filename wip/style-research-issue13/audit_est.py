"""Python port of detector/src/audit.rs's estimate_mixture (binned KDE mixture MLE + bootstrap over
corpus / calibration texts / model-level shift or composition), plus candidate estimators.

groups: list of (unit_name, np.array of scores) for each component, where a unit is a model (LOMO
style) or a family (LOFO style); the pooled sample is their concatenation."""
import numpy as np

FLOOR = 1e-3


def silverman(x):
    x = np.asarray(x, float)
    n = max(len(x), 2)
    sd = x.std(ddof=1) if len(x) > 1 else 0.0
    q75, q25 = np.quantile(x, [0.75, 0.25], method='nearest') if len(x) else (0, 0)
    iqr = q75 - q25
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    return max(0.9 * spread * n ** -0.2, 1e-3)


class Grid:
    def __init__(self, lo, hi, n):
        self.lo, self.n = lo, n
        self.step = (hi - lo) / (n - 1)

    def pos(self, x):
        return np.clip((np.asarray(x, float) - self.lo) / self.step, 0, self.n - 1)

    def hist_nearest(self, x):
        return np.bincount(np.round(self.pos(x)).astype(int), minlength=self.n).astype(float)

    def kde(self, x, h):
        p = self.pos(x)
        i = np.minimum(np.floor(p).astype(int), self.n - 2)
        f = p - i
        c = np.bincount(i, 1 - f, minlength=self.n) + np.bincount(i + 1, f, minlength=self.n)
        r = max(int(np.ceil(4 * h / self.step)), 1)
        kern = np.exp(-0.5 * (np.arange(-r, r + 1) * self.step / h) ** 2)
        d = np.convolve(c, kern, mode='same') if len(kern) <= self.n else np.convolve(c, kern)[r:r + self.n]
        mass = d.sum() * self.step
        width = self.step * self.n
        return (1 - FLOOR) * d / max(mass, 1e-300) + FLOOR / width


def mle(c, u, v):
    m = c > 0
    c, u, v = c[m], u[m], v[m]
    g = lambda p: np.sum(c * (u - v) / (p * u + (1 - p) * v))
    if g(0.0) <= 0:
        return 0.0
    if g(1.0) >= 0:
        return 1.0
    a, b = 0.0, 1.0
    for _ in range(50):
        mid = 0.5 * (a + b)
        if g(mid) > 0:
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


def unit_means(groups):
    return np.array([np.mean(s) for _, s in groups])


def model_shift(rng, means, m):
    j = len(means)
    if j < 2 or m == 0:
        return 0.0
    c = means - means.mean()
    return c[rng.integers(0, j, m)].mean() + c[rng.integers(0, j, j)].mean()


def estimate(scores, up_groups, null_groups, source_models=2, model_mix=False, bootstrap=200,
             grid=512, seed=0x5eed, shift_scale=1.0):
    """The current Rust estimator (default: location shift, source_models = 2)."""
    up = np.concatenate([s for _, s in up_groups])
    nu = np.concatenate([s for _, s in null_groups])
    mu_up, mu_nu = unit_means(up_groups), unit_means(null_groups)
    sd = lambda means, m: np.sqrt(np.var(means) / m + np.var(means) / len(means)) if len(means) > 1 and m else 0.0
    sd_null, sd_up = sd(mu_nu, source_models), sd(mu_up, source_models)
    hu, hn = silverman(up), silverman(nu)
    pad = 4 * max(hu, hn) + 4 * max(sd_null, sd_up) * shift_scale
    lo = min(up.min(), nu.min()) - pad
    hi = max(up.max(), nu.max()) + pad
    g = Grid(lo, hi, grid)
    c = g.hist_nearest(scores)
    pi = mle(c, g.kde(up, hu), g.kde(nu, hn))
    rng = np.random.default_rng(seed)
    reps = []
    for b in range(bootstrap):
        cb = rng.poisson(c)
        if model_mix and source_models > 0:
            comps = []
            for groups, pooled in ((up_groups, up), (null_groups, nu)):
                pick = [groups[i][1] for i in rng.integers(0, len(groups), source_models)]
                which = rng.integers(0, source_models, len(pooled))
                comps.append(np.array([pick[w][rng.integers(0, len(pick[w]))] for w in which]))
            ub, nb = comps
        else:
            du = model_shift(rng, mu_up, source_models) * shift_scale
            dn = model_shift(rng, mu_nu, source_models) * shift_scale
            ub = up[rng.integers(0, len(up), len(up))] + du
            nb = nu[rng.integers(0, len(nu), len(nu))] + dn
        reps.append(mle(cb, g.kde(ub, silverman(ub)), g.kde(nb, silverman(nb))))
    reps = np.sort(reps)
    q = lambda p: reps[int(round((len(reps) - 1) * p))]
    ci = [float(np.clip(min(q(0.025), pi), 0, 1)), float(np.clip(max(q(0.975), pi), 0, 1))]
    return float(pi), ci


def moments(scores, up_groups, null_groups, source_models=1, bootstrap=2000, seed=0x5eed, level=0.95):
    """Set-level method of moments with a unit-level (family) random-effects interval:
    pi = (mean(corpus) - mu_null) / (mu_up - mu_null), where the corpus's independent part has an
    unknown unit effect drawn from the null units' spread (source_models units), and the upstream
    part from the upstream units' spread. Interval by parametric bootstrap over unit effects and
    corpus noise."""
    s = np.asarray(scores, float)
    mu_up, mu_nu = unit_means(up_groups), unit_means(null_groups)
    a, b = mu_nu.mean(), mu_up.mean()
    pi = float(np.clip((s.mean() - a) / (b - a), 0, 1))
    rng = np.random.default_rng(seed)
    tn, tu = mu_nu.std(ddof=1), mu_up.std(ddof=1)
    se_corpus = s.std(ddof=1) / np.sqrt(len(s))
    reps = []
    # pivot: invert mean = pi*(b+du) + (1-pi)*(a+dn) + e over a grid of pi
    grid = np.linspace(0, 1, 201)
    keep = []
    for p in grid:
        dn = rng.standard_t(len(mu_nu) - 1, bootstrap) * tn * np.sqrt(1 / source_models + 1 / len(mu_nu))
        du = rng.standard_t(len(mu_up) - 1, bootstrap) * tu * np.sqrt(1 / source_models + 1 / len(mu_up))
        sim = p * (b + du) + (1 - p) * (a + dn) + rng.normal(0, se_corpus, bootstrap)
        lo, hi = np.quantile(sim, [(1 - level) / 2, 1 - (1 - level) / 2])
        if lo <= s.mean() <= hi:
            keep.append(p)
    ci = [float(min(keep)) if keep else pi, float(max(keep)) if keep else pi]
    return pi, ci

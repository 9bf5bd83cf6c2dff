"""The two-sample drift statistics, on prepared numpy arrays, and the table of tests by name.

Each function compares a reference sample with a current one and returns
``(statistic, p_value)``; distances return ``nan`` as their p-value. Inputs are
already cleaned by :mod:`loopml.monitoring.samples`: numeric samples are sorted
float64 arrays without missing or infinite values, categorical ones are counts
over the same list of categories (or bins). Nothing here loops over rows.

The tests, their default thresholds and what "drifted" means:

==================  =============  ==========  =========================================
name                column kinds   threshold   drifted when
==================  =============  ==========  =========================================
``ks``              numeric        0.05        p-value < threshold (two-sample KS)
``wasserstein``     numeric        0.1         distance / std(reference) >= threshold
``chisquare``       both           0.05        p-value < threshold (2 x k homogeneity)
``jensenshannon``   both           0.1         distance (natural log) >= threshold
``psi``             both           0.1         population stability index >= threshold
==================  =============  ==========  =========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loopml.errors import InvalidValueError, did_you_mean

NUMERIC = "numeric"
CATEGORICAL = "categorical"
# Below this std the Wasserstein distance is divided by this floor instead (Evidently uses the same
# floor), so a constant reference column gives a finite, large score rather than a division by zero.
STD_FLOOR = 1e-3
# Empty bins get this share in PSI, whose log ratio is undefined at zero.
PSI_FLOOR = 1e-4
# Up to this many values in each sample, ks_2samp's p-value is exact (scipy's MAX_AUTO_N), and ours.
KS_EXACT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class StatTest:
    """What one named test accepts and how its statistic turns into a verdict.

    ``p_value`` tests flag drift when the p-value falls below the threshold;
    distance tests flag it when the distance reaches the threshold.
    """

    name: str
    title: str
    kinds: frozenset[str]
    threshold: float
    p_value: bool

    def drifted(self, statistic: float, p_value: float, threshold: float) -> bool:
        """The verdict for one computed statistic; never True on a NaN score."""
        if self.p_value:
            return bool(p_value < threshold)
        return bool(statistic >= threshold)


TESTS: dict[str, StatTest] = {
    "ks": StatTest("ks", "Kolmogorov-Smirnov", frozenset({NUMERIC}), 0.05, True),
    "wasserstein": StatTest("wasserstein", "Wasserstein (normed)", frozenset({NUMERIC}), 0.1, False),
    "chisquare": StatTest("chisquare", "chi-square", frozenset({NUMERIC, CATEGORICAL}), 0.05, True),
    "jensenshannon": StatTest("jensenshannon", "Jensen-Shannon", frozenset({NUMERIC, CATEGORICAL}), 0.1, False),
    "psi": StatTest("psi", "PSI", frozenset({NUMERIC, CATEGORICAL}), 0.1, False),
}
ALIASES = {
    "kolmogorov-smirnov": "ks",
    "kolmogorov_smirnov": "ks",
    "wasserstein_distance": "wasserstein",
    "chi2": "chisquare",
    "chi-square": "chisquare",
    "chi_square": "chisquare",
    "js": "jensenshannon",
    "jensen-shannon": "jensenshannon",
    "jensen_shannon": "jensenshannon",
}


def get_test(name: str) -> StatTest:
    """The test called ``name`` (or one of its aliases); InvalidValueError naming the known tests otherwise."""
    if not isinstance(name, str):
        raise InvalidValueError(f"A drift test is named by a string, got {name!r}.")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in TESTS:
        raise InvalidValueError(
            f"Unknown drift test {name!r}; use one of {', '.join(TESTS)}." + did_you_mean(key, [*TESTS, *ALIASES])
        )
    return TESTS[key]


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: the largest gap between the two empirical CDFs, and its p-value.

    The same statistic and p-value as ``scipy.stats.ks_2samp`` (method "auto"), without importing
    ``scipy.stats`` (about 0.5 to 2 s, several times a whole ``drift`` call) when both samples hold at
    most ``KS_EXACT_MAX`` values: there the p-value is exact, and computed here, in numpy, by the
    algorithm scipy uses (Hodges' lattice paths), as counts; it matches scipy's to about 1e-12. Larger
    samples take scipy's asymptotic distribution, and import ``scipy.stats`` on first use.
    """
    n_ref, n_cur = reference.size, current.size
    if max(n_ref, n_cur) > KS_EXACT_MAX:
        from scipy import stats as scipy_stats

        result = scipy_stats.ks_2samp(reference, current)
        return float(result.statistic), float(result.pvalue)
    pooled = np.concatenate([reference, current])
    ref_cdf = np.searchsorted(reference, pooled, side="right") / n_ref
    gaps = ref_cdf - np.searchsorted(current, pooled, side="right") / n_cur
    statistic = max(float(np.clip(-gaps.min(), 0, 1)), float(gaps.max()))
    gcd = math.gcd(n_ref, n_cur)
    lcm = (n_ref // gcd) * n_cur
    steps = round(statistic * lcm)  # the statistic is a whole number of 1/lcm steps; scipy reports it so
    if steps == 0:
        return 0.0, 1.0
    square = n_ref == n_cur
    p_value = _ks_outside_square(n_ref, steps) if square else _ks_outside_band(n_ref, n_cur, steps * gcd)
    return steps / lcm, min(max(p_value, 0.0), 1.0)


def _ks_outside_square(n: int, h: int) -> float:
    """P(D >= h/n) for two samples of n values each: scipy's alternating sum, in Horner form."""
    p = 0.0
    k = n // h
    while k >= 0:
        term = 1.0
        for j in range(h):
            term = (n - k * h - j) * term / (n + k * h + j + 1)
        p = term * (1.0 - p)
        k -= 1
    return 2 * p


def _ks_outside_band(m: int, n: int, bound: int) -> float:
    """The share of the lattice paths from (0, 0) to (m, n) that touch ``|n x - m y| >= bound``.

    Paths inside the band are counted row by row (one row a value of the smaller sample): a count is
    the one to its left plus the one below, and zero outside the band, which is a window moving right,
    so each row is a cumulative sum of the row below over its window. Counts grow like binomial
    coefficients; every 32 rows they are scaled down by a power of two, kept apart. Entries left of the
    window are stale but never read again.
    """
    if m < n:
        m, n = n, m
    rows = np.arange(n + 1, dtype=np.int64) * m
    lows = np.maximum((rows - bound) // n + 1, 0).tolist()
    highs = np.minimum(-(-(rows + bound) // n) - 1, m).tolist()
    counts = np.zeros(m + 1)
    counts[: highs[0] + 1] = 1.0
    exponent = 0
    accumulate = np.add.accumulate
    for y in range(1, n + 1):
        low, high = lows[y], highs[y]
        if high < low:  # no path stays inside
            return 1.0
        window = counts[low : high + 1]
        accumulate(window, out=window)
        if y % 32 == 0:
            _, shift = math.frexp(float(window.max()))
            window *= 2.0**-shift
            exponent += shift
    inside = float(counts[m])
    if inside <= 0:
        return 1.0
    log_paths = math.lgamma(m + n + 1) - math.lgamma(m + 1) - math.lgamma(n + 1)
    return -math.expm1(math.log(inside) + exponent * math.log(2) - log_paths)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """The first Wasserstein distance between two sorted samples (what ``scipy.stats.wasserstein_distance`` returns).

    It is the area between the two empirical CDFs. Samples of equal size pair up in order, and the
    area is the mean gap between the i-th smallest values of each: one subtraction, no merge. Otherwise
    the sorted inputs are merged in linear time (one ``searchsorted`` of sorted keys rather than a sort
    of the concatenation), and the CDF heights are running counts of which sample each merged value
    came from. Where merged values tie, the step is zero and so is its term.
    """
    n_ref, n_cur = reference.size, current.size
    if n_ref == n_cur:
        return float(np.mean(np.abs(reference - current)))
    n = n_ref + n_cur
    positions = np.searchsorted(reference, current, side="right") + np.arange(n_cur)
    from_current = np.zeros(n, dtype=bool)
    from_current[positions] = True
    merged = np.empty(n, dtype=np.float64)
    merged[positions] = current
    merged[~from_current] = reference
    current_below = np.cumsum(from_current[:-1], dtype=np.int64)
    # |F_ref - F_cur| * n_ref * n_cur, in exact integers: F_ref = (k - c) / n_ref, F_cur = c / n_cur.
    gaps = np.abs(np.arange(1, n, dtype=np.int64) * n_cur - current_below * n)
    return float(np.dot(gaps.astype(np.float64), np.diff(merged)) / (n_ref * n_cur))


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Wasserstein distance divided by the reference's standard deviation (floored at ``STD_FLOOR``).

    Dividing by the spread makes one threshold fit every column whatever its unit: 0.1 means the
    mass moved on average a tenth of a standard deviation.
    """
    scale = max(float(np.std(reference)), STD_FLOOR)
    return wasserstein(reference, current) / scale, math.nan


def chisquare(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on the 2 x k table of counts, and its p-value.

    The same statistic as ``scipy.stats.chi2_contingency(table, correction=False)``. Unlike a
    goodness-of-fit test against the reference proportions, a category seen only in the current
    sample has a finite expected count here, so a new category raises the statistic instead of
    dividing by zero. With two categories this is the two-proportion z-test, squared.
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, _chi2_sf(dof, statistic)


def _chi2_sf(dof: int, x: float) -> float:
    """The chi-square survival function, ``scipy.special.chdtrc(dof, x)``, to about 1e-11 relative.

    It is Q(dof/2, x/2), the regularized upper incomplete gamma function: a series for the lower
    share below x/2 < dof/2 + 1, Lentz's continued fraction above (Numerical Recipes, 6.2). In pure
    Python because ``scipy.special`` takes 0.15 to 0.3 s to import, ten times a small ``drift`` call.
    """
    if x <= 0:
        return 1.0
    a, z = dof / 2.0, x / 2.0
    log_front = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1.0:
        term = total = 1.0 / a
        k = a
        while abs(term) > abs(total) * 1e-17:
            k += 1.0
            term *= z / k
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = z + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    fraction = d
    for i in range(1, 10_000):
        step = -i * (i - a)
        b += 2.0
        d = step * d + b
        d = 1.0 / (d if abs(d) >= tiny else tiny)
        c = b + step / c
        c = c if abs(c) >= tiny else tiny
        fraction *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return math.exp(log_front) * fraction


def jensenshannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Jensen-Shannon distance (natural log, so between 0 and sqrt(ln 2)) between the two histograms.

    The formula of ``scipy.spatial.distance.jensenshannon``, with the rounding guard it lacks: the
    divergence can come out a hair below zero for identical histograms, and its square root would
    then warn.
    """
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    m = (p + q) / 2.0
    divergence = (np.sum(_rel_entr(p, m)) + np.sum(_rel_entr(q, m))) / 2.0
    return math.sqrt(max(float(divergence), 0.0)), math.nan


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``scipy.special.rel_entr`` for shares, where y > 0 wherever x > 0: x * ln(x / y), and 0 where x is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(x / y), 0.0)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Population stability index: sum of (current share - reference share) * ln(current / reference share).

    Bins empty on one side get the share ``PSI_FLOOR`` so that the log ratio stays finite.
    """
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    p = np.where(p == 0, PSI_FLOOR, p)
    q = np.where(q == 0, PSI_FLOOR, q)
    return float(np.sum((q - p) * np.log(q / p))), math.nan

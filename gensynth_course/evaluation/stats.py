"""How sure a measured figure is: 95 % intervals for everything a chapter states as a finding.

* Over samples (the images, captions or sounds one model was measured on): the bootstrap (Efron &
  Tibshirani 1993, ch. 13–14), here SciPy's BCa bootstrap with 2,000 resamples. Two methods
  measured on the same samples (the same starting noise, the same captions) are compared
  *paired*: each resample draws the same items for both, so the noise they share cancels.
  A share of 0/1 items that are all 0 or all 1 has no bootstrap spread (every resample agrees);
  its interval is the exact binomial one (Clopper & Pearson 1934) instead of a zero width that
  would claim certainty: 60 hits out of 60 give [0.940, 1]. A figure that every resample exceeds
  (a Fréchet distance at its floor) leaves BCa undefined; its interval is then the percentile one.
* Over training seeds (one figure per trained model): Student's t-interval of the mean over the
  seeds, mean ± t_{0.975, n−1} · s / √n. One seed has no interval, and says so.
* How much more one method's figures vary over seeds than another's: the F interval of the ratio
  of their variances (:func:`variance_ratio`).

Every function returns a plain dict that goes straight into an eval's JSON: the figure itself
under ``value`` (or ``mean``), and ``ci_low``/``ci_high``. A difference is a finding only when its
interval excludes zero (:func:`excludes_zero`).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
# How many resampled sets a counted statistic is given at once (see counted): for 2,048 rows of 128
# features, about half a GiB of working memory.
COUNTED_BLOCK = 1024


def _as_rows(name: str, values) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
    if array.ndim == 0 or len(array) < 2:
        raise ValueError(f"{name}: an interval needs at least 2 measured items, got {array.size}; measure more "
                         "samples (hundreds for a useful interval).")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: the values contain NaN or infinity; check what produced them before "
                         "computing an interval.")
    return array


def _bootstrap(data: tuple, statistic: Callable, seed: int) -> tuple[float, float]:
    """SciPy's BCa interval of ``statistic``, which takes the samples (or index arrays) with any
    leading axes and an ``axis`` keyword (SciPy's vectorized form)."""
    with warnings.catch_warnings():          # a degenerate sample is handled below
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=getattr(stats, "DegenerateDataWarning", RuntimeWarning))
        result = stats.bootstrap(data, statistic, vectorized=True, n_resamples=RESAMPLES,
                                 confidence_level=CONFIDENCE, method="BCa", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        # BCa's bias correction z₀ = Φ⁻¹(share of resamples below the figure) is infinite when every
        # resample lies on one side of it, as for a Fréchet distance at its floor, where any resample
        # is farther: the percentile interval of the same resamples instead (Efron & Tibshirani 1993,
        # chapter 13), which has zero width only when every resample agrees.
        tail = (1 - CONFIDENCE) / 2
        low, high = np.quantile(result.bootstrap_distribution, [tail, 1 - tail])
    return float(low), float(high)


def _mean(*samples, axis=-1):
    return np.mean(samples[0], axis=axis)


def counted(statistic: Callable) -> Callable:
    """Mark a statistic of a whole set of rows, ``statistic(rows)``, that can also give the figures of
    B sets made of the same rows: ``statistic(rows, counts)``, with ``counts`` (B, n) how many times
    each row is in each set, returns B figures. A bootstrap resample and a jackknife sample (for
    BCa) are such sets, so the bootstrap hands them over a block at a time instead of gathering and
    computing each set alone: the same figures, several times faster for a Fréchet distance, where
    the second moments of all the sets are one matrix product
    (:func:`~gensynth_course.evaluation.metrics.frechet_distance_of_rows`)."""
    statistic.counted = True
    return statistic


def _of_picked(statistic: Callable, rows: np.ndarray) -> Callable:
    """``statistic`` of the rows that index arrays pick, as SciPy's vectorized bootstrap asks for it:
    indices (..., m) → figures (...). A :func:`counted` statistic is given the sets as counts, a
    block at a time; any other, one set at a time. When every set is the same one (the other
    sample, in a two-sample jackknife) it is computed once."""
    is_counted = getattr(statistic, "counted", False)

    def of(indices) -> np.ndarray:
        indices = np.asarray(indices)
        sets = indices.reshape(-1, indices.shape[-1])
        total = len(sets)
        if (sets == sets[0]).all():
            sets = sets[:1]
        if is_counted:
            figures = []
            for k in range(0, len(sets), COUNTED_BLOCK):
                block = sets[k:k + COUNTED_BLOCK]
                counts = np.bincount((np.arange(len(block))[:, None] * len(rows) + block).ravel(),
                                     minlength=len(block) * len(rows)).reshape(len(block), len(rows))
                figures.append(np.asarray(statistic(rows, counts), dtype=float))
            figures = np.concatenate(figures)
        else:
            figures = np.array([statistic(rows[picked]) for picked in sets], dtype=float)
        return np.broadcast_to(figures, (total,)).reshape(indices.shape[:-1])
    return of


def interval(values, statistic: Callable | None = None, seed: int = 0) -> dict:
    """A mean, or ``statistic(values)``, with its 95 % bootstrap interval.

    ``values`` holds one number per measured item (a 0/1 per caption for an accuracy), or, with a
    ``statistic`` of a whole set, one row per item (rows of features for a Fréchet distance:
    ``statistic`` then takes the rows; a :func:`counted` one is given many resamples at once).
    All-0 or all-1 items (a share nothing was missed or hit in) get the exact binomial interval.
    """
    rows = _as_rows("interval", values)
    if statistic is None and rows.ndim == 1 and rows[0] in (0.0, 1.0) and (rows == rows[0]).all():
        hits = int(rows.sum())                        # all misses or all hits: the exact binomial interval
        ci = stats.binomtest(hits, len(rows)).proportion_ci(confidence_level=CONFIDENCE, method="exact")
        value, low, high = float(rows[0]), float(ci.low), float(ci.high)
    elif statistic is None:
        value = float(rows.mean())
        low, high = _bootstrap((rows,), _mean, seed=seed)
    else:
        value = float(statistic(rows))
        of = _of_picked(statistic, rows)
        low, high = _bootstrap((np.arange(len(rows)),), lambda i, axis=-1: of(i), seed=seed)
    return {"value": value, "ci_low": low, "ci_high": high, "n": len(rows)}


def difference(a, b, statistic: Callable | None = None, paired: bool = True, seed: int = 0) -> dict:
    """mean(a) − mean(b), or ``statistic(a) − statistic(b)``, with its 95 % bootstrap interval.
    ``paired``: item i of ``a`` and of ``b`` were measured on the same thing (noise, caption,
    scene), so they are resampled together; that needs equally many items."""
    a, b = _as_rows("difference (a)", a), _as_rows("difference (b)", b)
    if paired and len(a) != len(b):
        raise ValueError(f"difference: a paired comparison needs as many items in both, got {len(a)} and {len(b)}; "
                         "measure both methods on the same items, or pass paired=False.")
    if statistic is None:
        value = float(a.mean() - b.mean())
        if paired:                                   # the mean of the paired differences
            low, high = _bootstrap((a - b,), _mean, seed=seed)
        else:
            low, high = _bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), seed=seed)
    else:
        value = float(statistic(a) - statistic(b))
        of_a, of_b = _of_picked(statistic, a), _of_picked(statistic, b)
        if paired:
            low, high = _bootstrap((np.arange(len(a)),), lambda i, axis=-1: of_a(i) - of_b(i), seed=seed)
        else:
            low, high = _bootstrap((np.arange(len(a)), np.arange(len(b))),
                                   lambda i, j, axis=-1: of_a(i) - of_b(j), seed=seed)
    return {"value": value, "ci_low": low, "ci_high": high, "n": len(a), "paired": paired}


def over_seeds(values: Sequence[float]) -> dict:
    """One figure per training seed → the seeds' figures, their mean and its 95 % t-interval
    (``ci_low``/``ci_high`` are None for a single seed: one run cannot say how runs vary)."""
    figures = [float(v) for v in values]
    if not figures or not all(math.isfinite(v) for v in figures):
        raise ValueError(f"over_seeds: give one finite figure per training seed, got {values!r}.")
    mean = float(np.mean(figures))
    if len(figures) == 1:
        return {"seeds": figures, "mean": mean, "ci_low": None, "ci_high": None}
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(figures) - 1) * np.std(figures, ddof=1) / math.sqrt(len(figures))
    return {"seeds": figures, "mean": mean, "ci_low": float(mean - half), "ci_high": float(mean + half)}


def variance_ratio(a: Sequence[float], b: Sequence[float]) -> dict:
    """How much more the figures ``a`` (one per training seed of one method) vary than ``b``: the
    ratio of their sample variances s_a² / s_b² with its 95 % interval from the F distribution,
    [F / F_{0.975}(n_a − 1, n_b − 1), F / F_{0.025}(n_a − 1, n_b − 1)] (the F-test of equal
    variances, which assumes each set is drawn from a normal distribution). A ratio is a finding
    only when its interval excludes 1; with three seeds on each side it must be beyond about 39."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) < 2 or len(b) < 2 or not all(math.isfinite(v) for v in a + b):
        raise ValueError(f"variance_ratio: give at least two finite figures on each side, got {a!r} and {b!r}.")
    var_a, var_b = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    if var_b == 0:
        raise ValueError(f"variance_ratio: the figures of b do not vary ({b!r}); the ratio is undefined.")
    ratio, dfs = var_a / var_b, (len(a) - 1, len(b) - 1)
    tail = (1 - CONFIDENCE) / 2
    return {"value": ratio, "ci_low": ratio / float(stats.f.ppf(1 - tail, *dfs)),
            "ci_high": ratio / float(stats.f.ppf(tail, *dfs)), "n": [len(a), len(b)]}


def excludes_zero(result: dict) -> bool:
    """True when an interval from :func:`difference` or :func:`over_seeds` lies wholly on one side
    of zero: the only differences the course states as findings."""
    low, high = result["ci_low"], result["ci_high"]
    return low is not None and (low > 0 or high < 0)


def direction(*results: dict) -> str:
    """"higher" when every interval (from :func:`difference` or :func:`over_seeds`) lies above
    zero, "lower" when every one lies below, else "no difference": a finding needs them all."""
    if all(r["ci_low"] is not None and r["ci_low"] > 0 for r in results):
        return "higher"
    if all(r["ci_high"] is not None and r["ci_high"] < 0 for r in results):
        return "lower"
    return "no difference"


def rounded(result: dict, digits: int = 4) -> dict:
    """A result of this module with its figures rounded, for an eval's JSON."""
    def r(value):
        if isinstance(value, list):
            return [r(v) for v in value]
        return round(value, digits) if isinstance(value, float) else value
    return {key: r(value) for key, value in result.items()}


def describe(result: dict, digits: int = 3) -> str:
    """``0.812 [0.790, 0.833]``: a figure and its interval, as the chapters print them."""
    value = result["value"] if "value" in result else result["mean"]
    if result["ci_low"] is None:
        return f"{value:.{digits}f} (one seed, no interval)"
    return f"{value:.{digits}f} [{result['ci_low']:.{digits}f}, {result['ci_high']:.{digits}f}]"

"""Mean, spread and the paired (same-seed) difference of a study's scores; pure functions."""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator; 0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile (SciPy's, the one dependency the study statistics need)."""
    try:
        from scipy.stats import t
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the study statistics need SciPy: pip install 'smmcl[analysis]'") from None
    return float(t.ppf(p, dof))


def paired_difference(values: Mapping[int, float], reference: Mapping[int, float], level: float = 0.95) -> Dict[str, object]:
    """Per-seed differences `values[s] - reference[s]` over the seeds both have: their mean, standard
    deviation, and the t confidence interval of the mean difference at `level` (None below 2 seeds)."""
    seeds = sorted(set(values) & set(reference))
    deltas = [values[s] - reference[s] for s in seeds]
    if not deltas:
        return {"n": 0, "seeds": [], "deltas": [], "delta_mean": None, "delta_std": None, "delta_ci95": None}
    mean, std = mean_std(deltas)
    ci: Optional[list[float]] = None
    if len(deltas) >= 2:
        half = t_quantile(0.5 + level / 2, len(deltas) - 1) * std / math.sqrt(len(deltas))
        ci = [mean - half, mean + half]
    return {"n": len(deltas), "seeds": seeds, "deltas": deltas, "delta_mean": mean, "delta_std": std, "delta_ci95": ci}


def verdict(ci: Optional[Sequence[float]]) -> str:
    """Words for a paired CI: `better` / `worse` when it excludes 0, `no clear difference` otherwise."""
    if ci is None:
        return "too few seeds"
    lo, hi = ci
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no clear difference"

"""Power-law fits in log-log space and crossover estimates.

A cost that grows like ``c * x^k`` is a straight line of slope ``k`` in log-log space, so the exponent is the
least-squares slope of ``log y`` against ``log x``. Attention's quadratic cost in the token count S (Vaswani et al.,
2017) shows up as a slope near 2 once it dominates; convolutions are linear in pixels (slope near 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["PowerFit", "crossover", "fit_power_law"]


@dataclass
class PowerFit:
    """``y ~ coef * x ** exponent`` fitted by least squares on ``(log x, log y)``.

    Attributes:
        exponent: The log-log slope.
        coef: ``exp(intercept)``.
        r2: Coefficient of determination of the log-log line.
        n: Number of points used.
    """

    exponent: float
    coef: float
    r2: float
    n: int

    def predict(self, x: float) -> float:
        """The fitted ``y`` at ``x``."""
        return self.coef * x**self.exponent

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> PowerFit | None:
    """Least-squares slope of ``log y`` against ``log x``.

    Args:
        xs: Positive abscissae (tokens, pixels, sequence lengths).
        ys: Positive values (seconds, bytes, FLOPs). Pairs with a non-positive or missing value are dropped.

    Returns:
        A :class:`PowerFit`, or ``None`` when fewer than two distinct usable ``x`` remain.
    """
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=False)
           if x is not None and y is not None and x > 0 and y > 0 and math.isfinite(y)]
    if len({p[0] for p in pts}) < 2:
        return None
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((p[1] - my) ** 2 for p in pts)
    ss_res = sum((p[1] - (intercept + slope * p[0])) ** 2 for p in pts)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerFit(exponent=slope, coef=math.exp(intercept), r2=r2, n=n)


def crossover(xs: Sequence[float], a: Sequence[float], b: Sequence[float]) -> tuple[float | None, str | None]:
    """Where series ``a`` first reaches series ``b`` (e.g. attention FLOPs against linear-layer FLOPs).

    Inside the measured range the crossing is interpolated in log-log space between the two points around the last
    place where ``a`` goes from below ``b`` to above it, so one noisy small-size point cannot fake an early crossing
    (``"measured"``; the smallest ``x`` when ``a >= b`` everywhere). Otherwise it is extrapolated from power-law fits
    of both series (``"extrapolated"``), if the fitted lines cross at a positive ``x``.

    Returns:
        ``(x, method)`` or ``(None, None)`` when the series never cross.
    """
    pts = sorted((x, ya, yb) for x, ya, yb in zip(xs, a, b, strict=False) if x and ya and yb and ya > 0 and yb > 0)
    below = [i for i, (_, ya, yb) in enumerate(pts) if ya < yb]
    if pts and not below:
        return pts[0][0], "measured"
    if pts and below[-1] < len(pts) - 1:
        (x0, a0, b0), (x1, a1, b1) = pts[below[-1]], pts[below[-1] + 1]
        r0, r1 = math.log(a0 / b0), math.log(a1 / b1)
        t = -r0 / (r1 - r0)
        return math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0))), "measured"
    fa = fit_power_law([p[0] for p in pts], [p[1] for p in pts])
    fb = fit_power_law([p[0] for p in pts], [p[2] for p in pts])
    if fa is None or fb is None or fa.exponent - fb.exponent < 1e-6:
        return None, None
    try:
        x = (fb.coef / fa.coef) ** (1.0 / (fa.exponent - fb.exponent))
    except OverflowError:
        return None, None
    return (x, "extrapolated") if math.isfinite(x) else (None, None)

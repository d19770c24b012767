"""Student's t distribution, exactly, in pure Python: what Welch's test needs and no more.

The CDF is the regularized incomplete beta function, evaluated with Lentz's continued
fraction (Numerical Recipes, section 6.4), which converges for every degrees-of-freedom
value Welch's approximation can produce (any real number above zero). The quantile inverts
the two-sided tail by bisection: slower than Newton's method, but it cannot diverge.
"""

from __future__ import annotations

import math

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 100_000


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS):
        m2 = 2 * m
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPSILON:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _log_gamma_half_ratio(a: float) -> float:
    """ln Γ(a + 1/2) - ln Γ(a) without the cancellation of two huge lgamma values."""
    if a < 1e4:
        return math.lgamma(a + 0.5) - math.lgamma(a)
    # Stirling's series for both, subtracted term by term; each difference is small.
    shifted = a + 0.5
    return (
        0.5 * math.log(a)
        + (a * math.log1p(0.5 / a) - 0.5)
        + (1.0 / (12.0 * shifted) - 1.0 / (12.0 * a))
        - (1.0 / (360.0 * shifted**3) - 1.0 / (360.0 * a**3))
    )


def _log_beta(a: float, b: float) -> float:
    """ln B(a, b); exact to rounding also when one argument is 1/2 and the other huge."""
    if b == 0.5:
        return _LOG_SQRT_PI - _log_gamma_half_ratio(a)
    if a == 0.5:
        return _LOG_SQRT_PI - _log_gamma_half_ratio(b)
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


_LOG_SQRT_PI = 0.5 * math.log(math.pi)


def _regularized_beta(a: float, b: float, x: float, log_x: float, log_y: float) -> float:
    """I_x(a, b) given x and, precisely, ln x and ln(1 - x)."""
    log_front = a * log_x + b * log_y - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError("a and b must be positive")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return _regularized_beta(a, b, x, math.log(x), math.log1p(-x))


def two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for T ~ Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isinf(t):
        return 0.0
    if t == 0:
        return 1.0
    t2 = t * t
    # x = df / (df + t^2); its logarithms from t^2/df directly, not from a rounded x.
    ratio = t2 / df
    log_x = -math.log1p(ratio)
    log_y = math.log(ratio) + log_x
    return _regularized_beta(df / 2.0, 0.5, 1.0 / (1.0 + ratio), log_x, log_y)


def cdf(t: float, df: float) -> float:
    """P(T <= t)."""
    tail = two_sided_p(t, df) / 2.0
    return 1.0 - tail if t > 0 else tail


def critical_value(confidence: float, df: float) -> float:
    """The t with P(|T| <= t) = ``confidence``: the half-width factor of a confidence interval."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    alpha = 1.0 - confidence
    low, high = 0.0, 1.0
    while two_sided_p(high, df) > alpha:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if two_sided_p(middle, df) > alpha:
            low = middle
        else:
            high = middle
        if high - low <= 1e-14 * high:
            break
    return (low + high) / 2.0

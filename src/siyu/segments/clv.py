"""Predicted customer lifetime value: BG/NBD (how many more purchases, and whether the customer
is still "alive") and Gamma-Gamma (how much per purchase), fitted by maximum likelihood.

numpy / scipy only. Inputs are per-customer arrays in one time unit (days or weeks), as
clv_data.py computes them from transactions:

    frequency  x    repeat purchases: purchase periods (days) after the first one
    recency    t_x  time from the first purchase to the last one (0 when x = 0)
    T               time from the first purchase to the end of the calibration period
    monetary        mean value of the repeat purchases (ignored when x = 0)

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2) (FHL below; equation numbers
are theirs); Fader & Hardie (2013), "The Gamma-Gamma model of monetary value". docs/clv.md
explains the assumptions and when not to trust the numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

# Fewer customers than this and a fit says nothing about a population.
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 5
# Parameters are optimised as logarithms (they must be positive); the box keeps exp() and
# the special functions finite, far outside any value a real data set produces.
_LOG_BOUND = 25.0
# Within this distance of a removable singularity of FHL eq. 10 (a = 1, or a + b = 1 for
# x = 0) the closed form loses its digits to cancellation: interpolate between two nearby
# points instead.
_SINGULAR = 1e-4


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD parameters: purchase rates λ ~ Gamma(r, alpha) across customers (alpha is in
    the data's time unit), dropout probability after each purchase p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    loglik: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma parameters: a transaction's value ~ Gamma(p, ν) and ν ~ Gamma(q, gamma)
    across customers (gamma is in the data's money unit)."""

    p: float
    q: float
    gamma: float
    loglik: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# --- input checks ------------------------------------------------------------------------


def _arrays(*columns: object) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=np.float64).ravel() for c in columns]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("the per-customer arrays differ in length")
    if any(not np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("the per-customer arrays hold a missing or infinite value")
    return arrays


def _check_rft(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a whole number of repeat purchases, not negative")
    if np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("recency must lie between 0 and T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 for customers without a repeat purchase")


# --- BG/NBD likelihood -------------------------------------------------------------------


class _Distinct:
    """A column as its distinct values and each row's index into them: a function of the
    column (a log, a special function) is computed once per distinct value, then gathered.
    Frequencies take a few dozen values and daily T and t_x a few hundred, whatever the
    number of customers."""

    def __init__(self, column: np.ndarray):
        self.values, self.index = np.unique(column, return_inverse=True)

    def of(self, values: np.ndarray) -> np.ndarray:
        """`values` (computed on self.values) for every row."""
        return values[self.index]


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of the columns and how often each occurs (as weights): customers
    with the same (x, t_x, T) contribute the same likelihood term."""
    n = len(columns[0])
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    change = np.ones(n, dtype=bool)
    if n:
        change[1:] = False
        for c in ordered:
            change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    return [c[starts] for c in ordered], counts


class _BgNbdData:
    """The customers of a BG/NBD fit, prepared once for many likelihood evaluations."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray):
        self.x, self.weights = x, weights
        self.repeat = x > 0
        self.xs, self.ts, self.tcal = _Distinct(x), _Distinct(t_x), _Distinct(T)

    def terms(self, params: np.ndarray, *, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-customer log-likelihood (FHL eq. 6) and, with `grad`, its derivatives with
        respect to the log-parameters (rows: r, alpha, a, b).

            L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
              + [x > 0] B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))

        summed in log space with logaddexp, so neither term underflows for frequent
        buyers."""
        r, alpha, a, b = params
        x, xs, of_x = self.x, self.xs.values, self.xs.of
        # B(a+1, b+x-1) is undefined for x = 0 (b - 1 may be <= 0): evaluate it on a safe
        # value and mask; the masked term is -inf, the customer has only the first term.
        xs_safe = np.where(xs > 0, xs, 1.0)
        log_t = self.tcal.of(np.log(alpha + self.tcal.values))
        log_tx = self.ts.of(np.log(alpha + self.ts.values))
        ab = betaln(a, b)
        common = of_x(gammaln(r + xs) - gammaln(r) + r * np.log(alpha))
        term1 = of_x(betaln(a, b + xs) - ab) - (r + x) * log_t
        term2 = np.where(
            self.repeat, of_x(betaln(a + 1, b + xs_safe - 1) - ab) - (r + x) * log_tx, -np.inf
        )
        both = np.logaddexp(term1, term2)
        ll = common + both
        if not grad:
            return ll, None
        w1 = np.exp(term1 - both)  # each term's share of L: d log L = w1 dT1 + w2 dT2
        w2 = 1.0 - w1
        psi_ab, psi_abx = digamma(a + b), digamma(a + b + xs)
        d_r = of_x(digamma(r + xs) - digamma(r) + np.log(alpha)) - w1 * log_t - w2 * log_tx
        inv_t = self.tcal.of(1 / (alpha + self.tcal.values))
        inv_tx = self.ts.of(1 / (alpha + self.ts.values))
        d_alpha = r / alpha - (r + x) * (w1 * inv_t + w2 * inv_tx)
        da1 = of_x(psi_ab - psi_abx)
        da2 = of_x(digamma(a + 1) - digamma(a) + psi_ab - psi_abx)
        db1 = of_x(digamma(b + xs) - psi_abx - digamma(b) + psi_ab)
        db2 = of_x(digamma(b + xs_safe - 1) - psi_abx - digamma(b) + psi_ab)
        d_a = w1 * da1 + w2 * da2
        d_b = w1 * db1 + w2 * db2
        # chain rule for θ = log(param): d/dθ = param · d/dparam
        return ll, np.vstack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


def bgnbd_loglik(params: BgNbd | tuple, frequency, recency, T) -> float:
    """The BG/NBD log-likelihood of the data under `params` ((r, alpha, a, b) or BgNbd)."""
    if isinstance(params, BgNbd):
        params = (params.r, params.alpha, params.a, params.b)
    x, t_x, t_cal = _arrays(frequency, recency, T)
    data = _BgNbdData(x, t_x, t_cal, np.ones_like(x))
    ll, _ = data.terms(np.asarray(params, dtype=float), grad=False)
    return float(ll.sum())


def _minimise(objective, starts: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """L-BFGS-B on `objective` (the mean negative log-likelihood and its gradient, over
    log-parameters) from the first start; the next starts are tried only while the runs
    end without converging (a flat ridge, a failed line search), and the best is kept."""
    best: tuple[np.ndarray, float] | None = None
    for start in starts:
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
            # on the mean log-likelihood: ~1e-12 relative is far below any digit reported
            options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-8},
        )
        if np.isfinite(result.fun) and (best is None or result.fun < best[1]):
            best = (result.x, float(result.fun))
        if result.success and best is not None:
            break
    if best is None:
        raise ValueError("the likelihood could not be maximised (no finite value found)")
    return best


def fit_bgnbd(
    frequency,
    recency,
    T,
    *,
    min_customers: int = MIN_CUSTOMERS,
    start: tuple[float, float, float, float] | None = None,
) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters. Raises ValueError with the reason when the data
    cannot support a fit (too few customers, no repeat purchase at all)."""
    x, t_x, t_cal = _arrays(frequency, recency, T)
    _check_rft(x, t_x, t_cal)
    n = len(x)
    if n < min_customers:
        raise ValueError(f"too few customers to fit BG/NBD: {n} (at least {min_customers})")
    if not np.any(x > 0):
        raise ValueError("no customer made a repeat purchase: BG/NBD cannot be fitted")
    if not np.any(t_cal > 0):
        raise ValueError("every customer's first purchase is on the last day: nothing to fit")
    (ux, ut_x, uT), weights = _compress(x, t_x, t_cal)
    data = _BgNbdData(ux, ut_x, uT, weights)
    total = weights.sum()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = data.terms(np.exp(theta), grad=True)
        value = -(weights @ ll) / total
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return float(value), -(grad @ weights) / total

    # Start where λ's mean matches the observed repeat rate (alpha carries the time unit,
    # so a fixed start would be far off in days or in weeks), from two dropout guesses.
    rate = max(x.sum(), 1.0) / max(t_cal.sum(), 1e-9)
    starts = [np.log([1.0, 1.0 / rate, 1.0, 1.0]), np.log([0.5, 0.5 / rate, 0.5, 2.0])]
    if start is not None:
        starts = [np.log(np.asarray(start, dtype=float))]
    theta, value = _minimise(objective, starts)
    r, alpha, a, b = np.exp(theta)
    return BgNbd(float(r), float(alpha), float(a), float(b), loglik=float(-value * total))


# --- Gamma-Gamma likelihood --------------------------------------------------------------


class _GammaGammaData:
    """The repeat customers of a Gamma-Gamma fit, prepared once for many evaluations."""

    def __init__(self, x: np.ndarray, m: np.ndarray, weights: np.ndarray):
        self.x, self.m, self.weights = x, m, weights
        self.xs = _Distinct(x)
        self.log_m, self.log_x = np.log(m), np.log(x)
        self.xm = x * m

    def terms(self, params: np.ndarray, *, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-customer log density of the mean spend m of x transactions (Fader & Hardie
        2013):

            f(m | p, q, γ, x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q · m^(px-1) · x^(px)
                                / (γ + m x)^(px+q)

        and, with `grad`, the derivatives with respect to log p, log q, log γ."""
        p, q, gamma = params
        x, pxs, of_x = self.x, p * self.xs.values, self.xs.of
        px = p * x
        log_gm = np.log(gamma + self.xm)
        ll = (
            of_x(gammaln(pxs + q) - gammaln(pxs))
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * self.log_m
            + px * self.log_x
            - (px + q) * log_gm
        )
        if not grad:
            return ll, None
        psi = of_x(digamma(pxs + q))
        d_p = x * (psi - of_x(digamma(pxs)) + self.log_m + self.log_x - log_gm)
        d_q = psi - digamma(q) + np.log(gamma) - log_gm
        d_gamma = q / gamma - (px + q) / (gamma + self.xm)
        return ll, np.vstack([d_p * p, d_q * q, d_gamma * gamma])


def _repeat_spend(frequency, monetary) -> tuple[np.ndarray, np.ndarray]:
    """The (x, m) pairs Gamma-Gamma is fitted on: repeat customers with a positive mean."""
    x, m = _arrays(frequency, monetary)
    keep = (x > 0) & (m > 0)
    return x[keep], m[keep]


def gamma_gamma_loglik(params: GammaGamma | tuple, frequency, monetary) -> float:
    """The Gamma-Gamma log-likelihood of the repeat customers' mean spend under `params`."""
    if isinstance(params, GammaGamma):
        params = (params.p, params.q, params.gamma)
    x, m = _repeat_spend(frequency, monetary)
    ll, _ = _GammaGammaData(x, m, np.ones_like(x)).terms(np.asarray(params, float), grad=False)
    return float(ll.sum())


def fit_gamma_gamma(
    frequency, monetary, *, min_customers: int = MIN_REPEAT_CUSTOMERS
) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters, on the customers with at least one repeat
    purchase and a positive mean repeat spend (the others carry no information about spend
    per transaction beyond the first, which the model leaves out). Raises ValueError when
    fewer than `min_customers` such customers exist."""
    x, m = _repeat_spend(frequency, monetary)
    if len(x) < min_customers:
        raise ValueError(
            f"too few customers with a repeat purchase to fit Gamma-Gamma: {len(x)} "
            f"(at least {min_customers})"
        )
    # Fit on spend divided by its mean: p and q do not depend on the money unit, gamma
    # scales with it, and the optimiser works on numbers near 1 whether amounts are in
    # dollars or in fen. The density of m is that of m/s divided by s.
    scale = float(m.mean())
    (ux, um), weights = _compress(x, m / scale)
    data = _GammaGammaData(ux, um, weights)
    total = weights.sum()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = data.terms(np.exp(theta), grad=True)
        value = -(weights @ ll) / total
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return float(value), -(grad @ weights) / total

    # mean spend ≈ pγ/(q-1): start with p = 1, q = 2, γ = 1 (the scaled mean), and a
    # second start with less spread across customers
    starts = [np.log([1.0, 2.0, 1.0]), np.log([4.0, 4.0, 0.75])]
    theta, value = _minimise(objective, starts)
    p, q, gamma = np.exp(theta)
    loglik = -value * total - total * np.log(scale)
    return GammaGamma(float(p), float(q), float(gamma * scale), loglik=float(loglik))


def spend_frequency_correlation(frequency, monetary) -> float:
    """Pearson correlation of frequency and mean spend among repeat customers: Gamma-Gamma
    assumes spend is independent of frequency, so this should be near 0 (nan if undefined)."""
    x, m = _repeat_spend(frequency, monetary)
    if len(x) < 2 or np.std(x) == 0 or np.std(m) == 0:
        return float("nan")
    return float(np.corrcoef(x, m)[0, 1])


# --- predictions -------------------------------------------------------------------------


def p_alive(params: BgNbd, frequency, recency, T) -> np.ndarray:
    """P(alive | x, t_x, T) (FHL eq. 13):

        1 / (1 + [x > 0] · a / (b + x - 1) · ((α + T) / (α + t_x))^(r + x))

    A customer without a repeat purchase is alive for sure: in BG/NBD a customer can only
    drop out right after a purchase, and the first one is what made them a customer."""
    x, t_x, t_cal = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_safe = np.where(x > 0, x, 1.0)
    log_odds = (
        np.log(a) - np.log(b + x_safe - 1) + (r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_x))
    )
    return np.where(x > 0, expit(-log_odds), 1.0)


def _expected_closed_form(
    r: float, alpha: float, a: float, b: float, t: float, x, t_x, t_cal
) -> np.ndarray:
    """FHL eq. 10 with the hypergeometric term rewritten by Euler's transformation
    2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z):

        (α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z)
            = (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z),   z = t / (α+T+t)

    The left form multiplies a huge hypergeometric value (its parameters grow with x) by a
    tiny power; the right one has two small parameters, whose series converges quickly and
    accurately for any frequency."""
    z = t / (alpha + t_cal + t)
    c = a + b + x - 1
    # at the singular points this yields inf or nan, which the callers replace
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c, z)
        numerator = c / (a - 1) * (1 - hyp)
    # the denominator of eq. 10 is 1 / P(alive), computed there in log space
    return numerator * p_alive(BgNbd(r, alpha, a, b), x, t_x, t_cal)


def _interpolated(f, at: float, singular: float) -> np.ndarray:
    """f(at) for `at` within _SINGULAR of a removable singularity: the straight line through
    f at `singular` ± _SINGULAR, accurate to O(_SINGULAR²) since f is smooth there."""
    lo, hi = f(singular - _SINGULAR), f(singular + _SINGULAR)
    return lo + (at - (singular - _SINGULAR)) / (2 * _SINGULAR) * (hi - lo)


def _expected_b(r: float, alpha: float, a: float, b: float, t: float, x, t_x, t_cal):
    """_expected_closed_form with the x = 0, a + b = 1 singularity (the factor a+b+x-1 meets
    a pole of 2F1) taken as a limit in b."""
    out = _expected_closed_form(r, alpha, a, b, t, x, t_x, t_cal)
    near = np.abs(a + b + x - 1) < _SINGULAR
    if np.any(near):  # only x = 0 rows can get here, since a + b > 0
        rows = (x[near], t_x[near], t_cal[near])
        out[near] = _interpolated(
            lambda bb: _expected_closed_form(r, alpha, a, bb, t, *rows), b, 1 - a
        )
    return out


def _expected(r: float, alpha: float, a: float, b: float, t: float, x, t_x, t_cal):
    """_expected_closed_form, with its two removable singularities taken as limits: at a = 1
    the factor 1/(a-1) meets a bracket that vanishes (and loses its digits to cancellation
    near it), and for x = 0 at a + b = 1 (see _expected_b). The expectation is smooth in a
    and b, so a straight line through two points either side is accurate to O(_SINGULAR²)."""
    if abs(a - 1) < _SINGULAR:
        return _interpolated(lambda aa: _expected_b(r, alpha, aa, b, t, x, t_x, t_cal), a, 1.0)
    return _expected_b(r, alpha, a, b, t, x, t_x, t_cal)


def expected_purchases(params: BgNbd, t: float, frequency, recency, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: the expected number of purchases in the next `t` time units
    (FHL eq. 10), per customer. Never negative; 0 for t = 0."""
    if t < 0:
        raise ValueError("the horizon must not be negative")
    x, t_x, t_cal = _arrays(frequency, recency, T)
    if t == 0:
        return np.zeros_like(x)
    out = _expected(params.r, params.alpha, params.a, params.b, float(t), x, t_x, t_cal)
    # rounding can leave a hair below 0 when the expectation is ~0 (long-dead customers)
    return np.clip(out, 0.0, None)


def expected_spend(params: GammaGamma, frequency, monetary) -> np.ndarray:
    """E[M | p, q, γ, m, x]: the expected value of a customer's future transaction, a
    weighted mean of the population mean pγ/(q-1) and the customer's own mean m:

        (q-1)/(px+q-1) · pγ/(q-1) + px/(px+q-1) · m  =  p(γ + x m) / (px + q - 1)

    Customers without a repeat purchase get the population mean (nan when q <= 1: the
    population mean is then infinite and the model does not fit the data)."""
    x, m = _arrays(frequency, monetary)
    p, q, gamma = params.p, params.q, params.gamma
    population = p * gamma / (q - 1) if q > 1 else np.nan
    repeat = (x > 0) & (m > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = p * (gamma + x * m) / (p * x + q - 1)
    return np.where(repeat, own, population)


def expected_value(
    bgnbd: BgNbd, gamma_gamma: GammaGamma, t: float, frequency, recency, T, monetary
) -> np.ndarray:
    """The expected spend in the next `t` time units: expected purchases × expected value
    per purchase. Revenue, not profit: no margin is applied, and it is not discounted
    (a value next year counts as much as one today)."""
    return expected_purchases(bgnbd, t, frequency, recency, T) * expected_spend(
        gamma_gamma, frequency, monetary
    )

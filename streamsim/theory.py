"""Queueing-theory oracles (DESIGN.md section 4): the exact means a virtual-clock run
with Poisson arrivals and exponential service must reproduce, and batch means for
the confidence intervals of a simulation's estimates.

Notation: ``lam`` is an arrival rate (events/s), ``mu`` the service rate of one
consumer (1 / mean service time, events/s), ``c`` the number of consumers and ``a =
lam / mu`` the offered load in Erlangs. Waits are queue waits (arrival -> start of
service), in seconds. Classes are indexed from 0, most urgent first.

Sources: Kleinrock, *Queueing Systems* vol. 1 (1975), chapter 3, and Gross, Shortle,
Thompson & Harris, *Fundamentals of Queueing Theory* (4th ed., 2008), chapter 2
(M/M/1, M/M/c and Erlang C, M/M/c/K); Cobham, "Priority assignment in waiting line
problems", *Operations Research* 2 (1954), and Kleinrock vol. 2 (1976), chapter 3
(non-preemptive priority, the conservation law); Law, *Simulation Modeling and
Analysis* (5th ed., 2015), chapter 9 (batch means).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import Scenario

__all__ = (
    "BatchMeans",
    "batch_means",
    "conservation_wait",
    "erlang_b",
    "erlang_c",
    "expected_mean_queue_wait",
    "expected_queue_wait",
    "mm1_wait",
    "mm1k_blocking",
    "mmc_wait",
    "mmck_blocking",
    "priority_waits",
    "weighted_mean_wait",
)


def _check_rates(lam: float, mu: float, c: int = 1) -> None:
    if lam < 0 or not math.isfinite(lam):
        raise ValueError(f"lam must be a finite rate >= 0, got {lam}")
    if mu <= 0 or not math.isfinite(mu):
        raise ValueError(f"mu must be a finite rate > 0, got {mu}")
    if c < 1:
        raise ValueError(f"c must be >= 1, got {c}")


def _check_stable(lam: float, mu: float, c: int) -> None:
    _check_rates(lam, mu, c)
    if lam >= c * mu:
        raise ValueError(f"unstable: lam must be < c * mu = {c * mu}, got {lam} (the wait is infinite)")


def mm1_wait(lam: float, mu: float) -> float:
    """M/M/1 mean queue wait ``W_q = ρ / (μ − λ)``, ``ρ = λ/μ`` (Kleinrock vol. 1, section 3.2:
    the mean time in system minus the mean service time).

    Raises:
        ValueError: a rate is out of range or ``λ >= μ``.
    """
    _check_stable(lam, mu, 1)
    return (lam / mu) / (mu - lam)


def erlang_b(c: int, a: float) -> float:
    """Erlang B: the chance that an arrival finds all ``c`` servers busy in M/M/c/c
    with offered load ``a`` (by the stable recursion ``B(n) = a B(n−1) / (n + a B(n−1))``)."""
    if c < 0:
        raise ValueError(f"c must be >= 0, got {c}")
    if a < 0 or not math.isfinite(a):
        raise ValueError(f"a must be finite and >= 0, got {a}")
    b = 1.0
    for n in range(1, c + 1):
        b = a * b / (n + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Erlang C: the chance that an arrival waits in M/M/c with offered load ``a < c``.

    ``C(c, a) = [a^c/c! · c/(c−a)] / [Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)]``
    (Kleinrock vol. 1, section 3.5), computed as ``c·B / (c − a(1 − B))`` from Erlang B,
    which stays finite for large ``c``.

    Raises:
        ValueError: ``c < 1`` or ``a`` is not in ``[0, c)``.
    """
    if c < 1:
        raise ValueError(f"c must be >= 1, got {c}")
    if not 0 <= a < c:
        raise ValueError(f"a must be in [0, c={c}), got {a}")
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mmc_wait(lam: float, mu: float, c: int) -> float:
    """M/M/c mean queue wait ``W_q = C(c, λ/μ) / (cμ − λ)`` (Kleinrock vol. 1, section 3.5).

    Raises:
        ValueError: a rate is out of range or ``λ >= cμ``.
    """
    _check_stable(lam, mu, c)
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmck_blocking(lam: float, mu: float, c: int, k: int) -> float:
    """M/M/c/K blocking probability: the stationary chance ``p_K`` that the system
    (``c`` servers, ``K`` places in all, queued plus in service) is full, which by
    PASTA is the share of arrivals dropped.

    ``p_n ∝ a^n / n!`` for ``n <= c`` and ``a^c/c! · (a/c)^{n−c}`` for ``c < n <= K``
    (Gross et al., chapter 2: the birth-death solution), summed in log space so that any ``K``
    and any load, ``ρ = a/c`` equal to 1 included, is finite. ``K < c`` is Erlang B
    with ``K`` servers.

    Raises:
        ValueError: a rate is out of range or ``k < 1``.
    """
    _check_rates(lam, mu, c)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if lam == 0:
        return 0.0
    log_a = math.log(lam / mu)
    log_terms = [0.0]
    for n in range(1, k + 1):
        log_terms.append(log_terms[-1] + log_a - math.log(min(n, c)))
    top = max(log_terms)
    total = math.fsum(math.exp(t - top) for t in log_terms)
    return math.exp(log_terms[-1] - top) / total


def mm1k_blocking(lam: float, mu: float, k: int) -> float:
    """M/M/1/K blocking probability, closed form (Kleinrock vol. 1, section 3.6):
    ``(1 − ρ) ρ^K / (1 − ρ^{K+1})`` for ``ρ ≠ 1`` and ``1 / (K + 1)`` for ``ρ = 1``.

    Raises:
        ValueError: a rate is out of range or ``k < 1``.
    """
    _check_rates(lam, mu)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rho = lam / mu
    if rho == 1:
        return 1 / (k + 1)
    if rho > 1:  # the same expression divided through by ρ^{K+1}: no overflow for large K
        inv = 1 / rho
        return (1 - inv) / (1 - inv ** (k + 1))
    return (1 - rho) * rho**k / (1 - rho ** (k + 1))


def priority_waits(lams: Sequence[float], mu: float, c: int = 1) -> list[float]:
    """Mean queue wait per class under non-preemptive strict priority (Cobham 1954),
    for M/M/c with one service rate ``μ`` for all classes; ``lams[0]`` is the most
    urgent class.

    ``W_q,k = W_0 / ((1 − σ_{k−1})(1 − σ_k))``, ``σ_k = Σ_{i<=k} λ_i / (cμ)``,
    ``W_0 = C(c, λ/μ) / (cμ)`` (the mean residual work an arrival finds ahead of it in
    service; for ``c = 1`` this is ``Σ λ_i / μ²``).

    Raises:
        ValueError: no classes, a rate is out of range or ``Σ λ_i >= cμ``.
    """
    if not lams:
        raise ValueError("lams must name at least one class")
    if any(lam < 0 for lam in lams):
        raise ValueError(f"lams must be >= 0, got {list(lams)}")
    lam = math.fsum(lams)
    _check_stable(lam, mu, c)
    w0 = erlang_c(c, lam / mu) / (c * mu)
    waits = []
    sigma_before = 0.0
    for lam_k in lams:
        sigma = sigma_before + lam_k / (c * mu)
        waits.append(w0 / ((1 - sigma_before) * (1 - sigma)))
        sigma_before = sigma
    return waits


def weighted_mean_wait(lams: Sequence[float], waits: Sequence[float]) -> float:
    """The λ-weighted mean wait over classes, ``Σ λ_k W_k / Σ λ_k``: the mean wait of
    an arbitrary arrival."""
    if len(lams) != len(waits):
        raise ValueError(f"lams and waits must have the same length, got {len(lams)} and {len(waits)}")
    total = math.fsum(lams)
    if total <= 0:
        raise ValueError(f"lams must not all be 0, got {list(lams)}")
    return math.fsum(lam * w for lam, w in zip(lams, waits, strict=True)) / total


def conservation_wait(lams: Sequence[float], mu: float, c: int = 1) -> float:
    """What the λ-weighted mean wait must equal under any work-conserving,
    non-preemptive discipline that does not look at service times, when every class
    has the same exponential service: the FIFO M/M/c wait of the total rate
    (Kleinrock's conservation law, vol. 2, chapter 3)."""
    return mmc_wait(math.fsum(lams), mu, c)


# ---------------------------------------------------------------------- scenarios


def _applies(sc: Scenario) -> tuple[list[float], float] | None:
    """(λ per class, μ) when DESIGN.md section 4 holds for ``sc``, else None."""
    if sc.arrival != "poisson" or sc.service != "exponential" or sc.maxsize != "unbounded":
        return None
    # Expiry, injected failures, retries and stalls change what a consumer does with an event.
    if sc.ttl is not None or sc.failure_rate > 0 or sc.fail_first > 0 or sc.stall is not None:
        return None
    rate, weights = sc.rate_hz, sc.priority_weights
    if rate is None or weights is None or sc.service_mean <= 0:
        return None
    mu = 1 / sc.service_mean
    if rate >= sc.consumers * mu:
        return None  # unstable: the wait grows without bound
    total = math.fsum(weights)
    return [rate * w / total for w in weights], mu


def expected_queue_wait(sc: Scenario) -> list[float | None]:
    """The theoretical mean queue wait of each class of ``sc``, in seconds.

    Known when arrivals are Poisson, service is exponential, the buffer is unbounded
    and the load is below capacity, with no expiry, failures or retries; then for one
    level (FIFO: M/M/c) or strict priority (Cobham). Under ``aging`` or ``wrr`` with
    several levels the per-class waits have no closed form (None), though their
    λ-weighted mean does: see ``expected_mean_queue_wait``. Every entry is None where
    theory does not apply. Any number of producers is fine: Poisson streams merge into
    one Poisson stream.
    """
    unknown: list[float | None] = [None] * sc.levels
    applies = _applies(sc)
    if applies is None:
        return unknown
    lams, mu = applies
    if sc.levels == 1:
        return [mmc_wait(lams[0], mu, sc.consumers)]
    if sc.discipline != "strict":
        return unknown
    return list(priority_waits(lams, mu, sc.consumers))


def expected_drop_share(sc: Scenario) -> float | None:
    """The theoretical share of events ``sc`` drops: M/M/c/K blocking, for ``drop-new``
    with a bounded buffer, Poisson arrivals and exponential service (any load).

    The system holds at most K = maxsize + consumers events, and by PASTA the chance
    an arrival finds it full is the share dropped, whatever its priority. None where
    theory does not apply.
    """
    if sc.overflow != "drop-new" or sc.maxsize == "unbounded":
        return None
    if sc.arrival != "poisson" or sc.service != "exponential" or sc.service_mean <= 0 or sc.rate_hz is None:
        return None
    if sc.ttl is not None or sc.failure_rate > 0 or sc.fail_first > 0 or sc.stall is not None:
        return None
    return mmck_blocking(sc.rate_hz, 1 / sc.service_mean, sc.consumers, sc.maxsize + sc.consumers)


def expected_mean_queue_wait(sc: Scenario) -> float | None:
    """The theoretical mean queue wait of an arbitrary event of ``sc`` (the λ-weighted
    mean over classes), in seconds, by the conservation law: the FIFO M/M/c wait,
    whatever the discipline (strict, aging and wrr are all work-conserving and
    non-preemptive). None where theory does not apply (see ``expected_queue_wait``)."""
    applies = _applies(sc)
    if applies is None:
        return None
    lams, mu = applies
    return conservation_wait(lams, mu, sc.consumers)


# ---------------------------------------------------------------------- statistics


class BatchMeans(NamedTuple):
    """A steady-state mean with its confidence interval, ``mean ± half_width``."""

    mean: float
    half_width: float
    batches: int  # number of batches the interval was computed from
    batch_size: int  # values per batch


def batch_means(values: Sequence[float] | np.ndarray, batches: int, confidence: float = 0.95) -> BatchMeans:
    """The mean of a correlated, stationary series with a Student-t confidence
    interval from non-overlapping batch means (Law, chapter 9): split ``values``
    into ``batches`` equal consecutive batches (dropping the first ``len % batches``
    values), treat the batch means as independent and normal, and return their mean
    and ``t_{b−1, (1+confidence)/2} · s / sqrt(b)``.

    Cut the warm-up off ``values`` before calling. Batches must be long compared with
    the series' correlation time for the interval to hold: 10 to 30 batches is usual.
    With ``batches == len(values)`` each value is one batch (independent replications).

    Raises:
        ValueError: fewer than 2 batches, fewer values than batches, or a confidence
            outside (0, 1).
    """
    from scipy import stats  # heavy: only tests and plots need it

    if batches < 2:
        raise ValueError(f"batches must be >= 2, got {batches}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    data = np.asarray(values, dtype=np.float64)
    size = len(data) // batches
    if size == 0:
        raise ValueError(f"need at least {batches} values for {batches} batches, got {len(data)}")
    means = data[len(data) - size * batches :].reshape(batches, size).mean(axis=1)
    t = float(stats.t.ppf((1 + confidence) / 2, batches - 1))
    half_width = t * float(means.std(ddof=1)) / math.sqrt(batches)
    return BatchMeans(float(means.mean()), half_width, batches, size)

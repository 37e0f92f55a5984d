"""Claims: each notebook's statements, their thresholds and the decisions drawn from the numbers,
recorded in ``<figures>/<stem>_claims.csv``, from which the README's verdict tables are generated
(``onion_gru.docs``).

A claim about a cell of seeds is decided on the 95% t-interval of its mean over seeds (``interval``),
never on the mean alone: SUPPORTED when the interval lies on the claim's side of its threshold, NOT
SUPPORTED when it lies on the other side, UNDECIDED when it straddles the threshold (or one seed
gives no interval).  A claim over several cells holds when each does (``all_of``).

Every threshold is applied through ``decide`` (cells of seeds) or ``exceeds`` (one measured number),
so that a claim handed over as a function (``claim``) is decided again with all its thresholds
``SENSITIVITY`` looser and stricter: docs/results.md shows how much each verdict rests on its
thresholds.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .profiles import Profile
from .tables import figure_dir


def mean_of(table: pd.DataFrame, method: str, size: int, variant: str) -> float:
    row = table[(table.method == method) & (table["size"] == size) & (table.variant == variant)]
    return float(row["mean"].iloc[0])


# A cell whose GRU gets fewer than half of the sequences a method is scored on right cannot tell a
# method that fails from a GRU that fails: it is marked (tables: ‡) and left out of the claims.
CEILING = 0.5


def below_ceiling(runs: pd.DataFrame, size: int, variant: str, method: str | None = None) -> bool:
    """Whether the GRU's own accuracy on a cell's scored sequences (``gru_accuracy``, mean over seeds)
    is below ``CEILING``; False where ``runs`` does not have it."""
    if "gru_accuracy" not in runs:
        return False
    return bool(pd.Series(seeds_of(runs, size, variant, method, "gru_accuracy")).mean() < CEILING)


def testable(runs: pd.DataFrame, by=("size", "variant", "method")) -> pd.DataFrame:
    """``runs`` without the cells (``by``) whose GRU is below its ceiling (``below_ceiling``)."""
    if "gru_accuracy" not in runs or not len(runs):
        return runs
    return runs[runs.groupby(list(by))["gru_accuracy"].transform("mean").fillna(1.0) >= CEILING]


# Notebook 02's claim 1 at one size, which notebook 07 tests for other cells: the onion intervention
# works where the linear unigram one fails.  Both thresholds are far above the chance floors (0.003
# and 0.033) and far below what a working intervention reaches (0.8-1.0).
LINEAR_FAILS_BELOW = 0.05
ONION_MARGIN = 0.3


def onion_beats_linear(runs: pd.DataFrame, size: int, variant: str) -> tuple[Interval, Interval, object]:
    """The intervals of the linear unigram accuracy and of the onion's margin over it (per seed: the
    same GRU), and the decision: linear below 0.05 and the margin at least 0.3 (not testable where
    either cell is below the GRU's ceiling)."""
    lin, onion = (seeds_of(runs, size, variant, m) for m in ("linear_unigram", "onion_unigram"))
    testable = not any(below_ceiling(runs, size, variant, m) for m in ("linear_unigram", "onion_unigram"))
    return (interval(lin), interval(onion - lin),
            all_of([decide(lin, LINEAR_FAILS_BELOW, above=False), decide(onion - lin, ONION_MARGIN)]) if testable else None)


# Notebook 02's last claim: an intervention that reaches 0.8 works (the GRUs themselves reach 0.9-1.0).
# (It also asked for a gain of 0.05 over the smallest N, a threshold that could hardly fail beside the
# first: dropped, issue 47.)
LINEAR_WORKS_ABOVE = 0.8


def linear_at_largest(sized_runs: pd.DataFrame, variant: str) -> tuple[Interval, Interval, object]:
    """The linear unigram cells of the six-size runs (``tables.across_sizes``) at the smallest and the
    largest N run, and the decision: the largest works (>= 0.8; not testable below the ceiling)."""
    lin = sized_runs[(sized_runs.method == "linear_unigram") & (sized_runs.variant == variant)]
    lo_size, hi_size = lin["size"].min(), lin["size"].max()
    lo, hi = (seeds_of(lin, n, variant, "linear_unigram") for n in (lo_size, hi_size))
    decision = None if below_ceiling(lin, hi_size, variant) else decide(hi, LINEAR_WORKS_ABOVE)
    return interval(lo), interval(hi), decision


# Notebooks 08 and 10: a GRU stores tokens linearly where the linear unigram intervention succeeds
# on at least half the examples.
LINEAR_FROM = 0.5


def linear_at(runs: pd.DataFrame, size: int, variant: str, task: float | None
              ) -> tuple[Interval | None, object, str | None]:
    """Whether a model (``runs``: its seeds' rows of every method, one cell) stores tokens linearly at N
    = ``size``: the interval of its linear unigram accuracy, the decision against ``LINEAR_FROM``, and
    why there is none (None where decided): "not run" (no linear cell, or ``task`` None: the GRU not
    shipped), "below the ceiling" (its own task accuracy ``task`` is below ``CEILING``) or "length 9:
    below the ceiling" (its GRU gets fewer than half of the linear method's scored sequences right,
    ``below_ceiling``)."""
    lin = seeds_of(runs, size, variant, "linear_unigram")
    if task is None or not len(lin):
        return None, None, "not run"
    iv = interval(lin)
    if task < CEILING:
        return iv, None, "below the ceiling"
    if below_ceiling(runs, size, variant, "linear_unigram"):
        return iv, None, "length 9: below the ceiling"
    return iv, decide(iv, LINEAR_FROM), None


def switch_size(means: pd.Series, threshold: float = LINEAR_FROM) -> int | None:
    """The smallest N (``means``: mean accuracy indexed by N) from which on, at it and every larger
    N measured, the mean reaches ``threshold``; None if the largest does not."""
    sizes = sorted(means.index)
    return next((n for i, n in enumerate(sizes) if all(means[m] >= threshold for m in sizes[i:])), None)


# Student's t, two-sided 95% (the 0.975 quantile) by degrees of freedom; beyond 30 the normal's.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass(frozen=True)
class Interval:
    """The mean of a cell's seeds and its 95% t-interval (lo, hi NaN for a single seed)."""
    mean: float
    lo: float
    hi: float
    n: int

    def text(self) -> str:
        if self.n < 2:
            return f"{self.mean:.2f} (n = {self.n}, no interval)"
        return f"{self.mean:.2f} [{self.lo:.2f}, {self.hi:.2f}] (n = {self.n})"


def interval(values) -> Interval:
    """The t-interval of the mean of ``values`` (one per seed): mean ± t(0.975, n - 1) x sd / sqrt(n)."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(values.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = (T_975[n - 2] if n - 1 <= len(T_975) else 1.96) * values.std(ddof=1) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


UNDECIDED = "undecided"  # a decision whose interval straddles its threshold (beside True, False, None)


SENSITIVITY = 0.1  # each verdict is decided again with its thresholds this much looser and stricter
_harder = 0.0  # how much stricter than stated every threshold is now (``harder_by``)


@contextmanager
def harder_by(delta: float):
    """Within it every threshold of ``decide`` and ``exceeds`` is ``delta`` stricter (raised for a
    claim that a value lies above it, lowered for one that it lies below; negative: looser)."""
    global _harder
    before, _harder = _harder, delta
    try:
        yield
    finally:
        _harder = before


def _moved(threshold: float, above: bool) -> float:
    return threshold + _harder if above else threshold - _harder


def exceeds(value: float, threshold: float, above: bool = True) -> bool:
    """One measured number (no seeds) at or above ``threshold`` (``above``; below it otherwise)."""
    threshold = _moved(threshold, above)
    return bool(value >= threshold) if above else bool(value < threshold)


def decide(values, threshold: float, above: bool = True):
    """True when the interval of ``values`` (one per seed, or an ``Interval``) lies at or above
    ``threshold`` (``above``; below it otherwise), False when it lies wholly on the other side,
    ``UNDECIDED`` when it straddles it or there is one seed, None when there is no value."""
    iv = values if isinstance(values, Interval) else interval(values) if len(values) else None
    if iv is None:
        return None
    if iv.n < 2:
        return UNDECIDED
    threshold = _moved(threshold, above)
    on_side, off_side = (iv.lo >= threshold, iv.hi < threshold) if above else (iv.hi < threshold, iv.lo >= threshold)
    return True if on_side else False if off_side else UNDECIDED


def seeds_of(runs: pd.DataFrame, size: int, variant: str, method: str | None = None,
             value: str = "accuracy") -> np.ndarray:
    """A cell's per-seed values, in seed order (``method`` None: ``runs`` has no method column)."""
    cell = runs[(runs["size"] == size) & (runs.variant == variant)]
    if method is not None:
        cell = cell[cell.method == method]
    return cell.sort_values("seed")[value].to_numpy(dtype=float)


def all_of(decisions):
    """A claim over several cells: NOT SUPPORTED if any cell is, else NOT TESTABLE if any is, else
    UNDECIDED if any is, else SUPPORTED."""
    decisions = list(decisions)
    for outcome in (False, None, UNDECIDED):
        if any(d is outcome or d == outcome for d in decisions):
            return outcome
    return True


def seeds_by_size(runs: pd.DataFrame, value: str = "accuracy") -> dict:
    """Each N's per-seed values (in seed order) of a frame already cut to one cell per N."""
    return {n: g.sort_values("seed")[value].to_numpy(dtype=float) for n, g in runs.groupby("size")}


def switch_bounds(seeds_by_size: dict, threshold: float = LINEAR_FROM) -> tuple[int | None, int | None]:
    """Where a switch to linear storage can lie, given each N's per-seed accuracies: (the smallest N
    from which every larger N's interval lies at or above ``threshold``: linear for sure from there,
    the smallest N from which no larger N's interval lies wholly below it: not ruled out from there);
    None where there is no such N."""
    sizes = sorted(seeds_by_size)
    decided = {n: decide(seeds_by_size[n], threshold) for n in sizes}
    sure = next((n for i, n in enumerate(sizes) if all(decided[m] is True for m in sizes[i:])), None)
    possible = next((n for i, n in enumerate(sizes) if all(decided[m] is not False for m in sizes[i:])), None)
    return sure, possible


def switches_first(first: tuple, second: tuple):
    """Whether a switch bounded by ``first`` (``switch_bounds``) lies at a smaller N than one bounded by
    ``second``: True when ``first`` is sure below where ``second`` is still ruled out, False when
    ``second`` is sure at or below where ``first`` becomes possible, else UNDECIDED (None: neither
    can switch within the sizes measured)."""
    (sure_a, possible_a), (sure_b, possible_b) = first, second
    if possible_a is None and possible_b is None:
        return None
    if sure_a is not None and (possible_b is None or sure_a < possible_b):
        return True
    if sure_b is not None and (possible_a is None or sure_b <= possible_a):
        return False
    return UNDECIDED


def verdict(supported) -> str:
    if supported is UNDECIDED:
        return "UNDECIDED"
    return {True: "SUPPORTED", False: "NOT SUPPORTED", None: "NOT TESTABLE"}[supported]


_claims: dict[str, list[dict]] = {}  # stem -> this kernel's claims so far (one notebook run)
_scopes: dict[str, str] = {}  # stem -> how fully the notebook replicates its artefact (``scope``)


def scope(stem: str, replication: str) -> None:
    """How fully notebook ``stem`` replicates its paper artefact ("full", "partial: why", "new"): a
    column of its claims (``claim``), so that the README's table says it beside each verdict."""
    _scopes[stem] = replication


def claim(profile: Profile, stem: str, artefact: str, statement: str, supported, evidence: str,
          intervals: dict[str, Interval] | None = None, notebook: str | None = None) -> None:
    """Print a claim's verdict with its evidence and record it in ``<figures>/<stem>_claims.csv``,
    rewritten with every claim of the run so far: the results tables of the README and docs/ are
    generated from these files (``onion_gru.docs``), never typed.  ``supported``: the decision, or a
    function that makes it, which is then also made with every threshold ``SENSITIVITY`` looser and
    stricter (columns ``looser``, ``stricter``; empty for a claim without a threshold).
    ``intervals``: the interval of each cell the verdict was decided on (its columns ``intervals``
    and ``n``, the fewest seeds); ``notebook``: the notebook that makes it, if not ``stem`` (a
    notebook may keep a second set of claims under a stem of its own)."""
    moved = {}
    if callable(supported):
        decide_it = supported
        for name, delta in (("looser", -SENSITIVITY), ("stricter", SENSITIVITY)):
            with harder_by(delta):
                moved[name] = verdict(decide_it())
        supported = decide_it()
    rows = _claims.setdefault(stem, [])
    rows.append({"notebook": notebook or stem, "artefact": artefact, "claim": statement, "verdict": verdict(supported),
                 "evidence": evidence, "replication": _scopes.get(stem, ""), "profile": profile.name,
                 "intervals": "; ".join(f"{k}: {v.text()}" for k, v in (intervals or {}).items()),
                 "n": min((v.n for v in (intervals or {}).values()), default=None),
                 "looser": moved.get("looser", ""), "stricter": moved.get("stricter", "")})
    pd.DataFrame(rows).to_csv(figure_dir(profile) / f"{stem}_claims.csv", index=False)
    print(f"Claim '{statement}': {verdict(supported)} (profile {profile.name}): {evidence}"
          + (f" [thresholds {SENSITIVITY} looser: {moved['looser']}, stricter: {moved['stricter']}]" if moved else ""))

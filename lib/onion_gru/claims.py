"""Claims: each notebook's statements, their thresholds and the decisions drawn from the numbers,
recorded in ``<figures>/<stem>_claims.csv``, from which the README's verdict tables are generated
(``onion_gru.docs``).
"""
from __future__ import annotations

import pandas as pd

from .profiles import Profile
from .tables import figure_dir


def mean_of(table: pd.DataFrame, method: str, size: int, variant: str) -> float:
    row = table[(table.method == method) & (table["size"] == size) & (table.variant == variant)]
    return float(row["mean"].iloc[0])


# Notebook 02's claim 1 at one size, which notebook 07 tests for other cells: the onion intervention
# works where the linear unigram one fails.  Both thresholds are far above the chance floors (0.003
# and 0.033) and far below what a working intervention reaches (0.8-1.0).
LINEAR_FAILS_BELOW = 0.05
ONION_MARGIN = 0.3


def onion_beats_linear(table: pd.DataFrame, size: int, variant: str) -> tuple[float, float, bool]:
    """(linear unigram mean, onion mean, whether linear < 0.05 and onion - linear >= 0.3)."""
    lin, onion = (mean_of(table, m, size, variant) for m in ("linear_unigram", "onion_unigram"))
    return lin, onion, bool(lin < LINEAR_FAILS_BELOW and onion - lin >= ONION_MARGIN)


# Notebook 02's last claim: an intervention that reaches 0.8 works (the GRUs themselves reach 0.9-1.0).
LINEAR_WORKS_ABOVE = 0.8
LINEAR_GAIN = 0.05


def linear_at_largest(sizes_table: pd.DataFrame, variant: str) -> tuple[pd.Series, pd.Series, bool]:
    """The linear unigram cells of a six-size table (``across_sizes``) at the smallest and the largest
    N run, and whether the largest works (>= 0.8) and beats the smallest by at least 0.05."""
    cells = sizes_table[(sizes_table.method == "linear_unigram") & (sizes_table.variant == variant)].sort_values("size")
    lo, hi = cells.iloc[0], cells.iloc[-1]
    return lo, hi, bool(hi["mean"] >= LINEAR_WORKS_ABOVE and hi["mean"] - lo["mean"] >= LINEAR_GAIN)


# Notebooks 08 and 10: a GRU stores tokens linearly where the linear unigram intervention succeeds
# on at least half the examples.
LINEAR_FROM = 0.5


def switch_size(means: pd.Series, threshold: float = LINEAR_FROM) -> int | None:
    """The smallest N (``means``: mean accuracy indexed by N) from which on, at it and every larger
    N measured, the mean reaches ``threshold``; None if the largest does not."""
    sizes = sorted(means.index)
    return next((n for i, n in enumerate(sizes) if all(means[m] >= threshold for m in sizes[i:])), None)


def verdict(supported: bool | None) -> str:
    return {True: "SUPPORTED", False: "NOT SUPPORTED", None: "NOT TESTABLE"}[supported]


_claims: dict[str, list[dict]] = {}  # stem -> this kernel's claims so far (one notebook run)
_scopes: dict[str, str] = {}  # stem -> how fully the notebook replicates its artefact (``scope``)


def scope(stem: str, replication: str) -> None:
    """How fully notebook ``stem`` replicates its paper artefact ("full", "partial: why", "new"): a
    column of its claims (``claim``), so that the README's table says it beside each verdict."""
    _scopes[stem] = replication


def claim(profile: Profile, stem: str, artefact: str, statement: str, supported: bool | None, evidence: str) -> None:
    """Print a claim's verdict with its evidence and record it in ``<figures>/<stem>_claims.csv``,
    rewritten with every claim of the run so far: the results tables of the README and docs/ are
    generated from these files (``onion_gru.docs``), never typed."""
    rows = _claims.setdefault(stem, [])
    rows.append({"notebook": stem, "artefact": artefact, "claim": statement, "verdict": verdict(supported),
                 "evidence": evidence, "replication": _scopes.get(stem, ""), "profile": profile.name})
    pd.DataFrame(rows).to_csv(figure_dir(profile) / f"{stem}_claims.csv", index=False)
    print(f"Claim '{statement}': {verdict(supported)} (profile {profile.name}): {evidence}")

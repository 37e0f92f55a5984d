"""What a cheaper analysis rule would have cost and changed, replayed on the shipped laptop curves.

    PYTHONPATH=lib python scripts/rule_replay.py

The laptop profile from an empty cache took 160 minutes on 2 cores, over its 120-minute target
(docs/results.md, timing).  Its GRUs are not replayed (every analysis depends on them); its 96 analyses
are: a run's training does not depend on when it stops, so a budget that stops no later than the
shipped one (a shorter patience, a lower cap, a larger min_gain) keeps exactly the model its curve
measured at the replayed stop (``Budget.stop_index``).  For each budget it prints and writes to
figures/rule_replay.csv: the analyses' worker-minutes (each group of two runs until its last member
stops, so a group's time is scaled by its longest member's steps), the laptop's wall time less
half the worker-minutes saved (an estimate: its analyses ran on 2 workers), and how far the
accuracies move: per run and per table cell (mean over seeds; signed, and how many cells rose), on
the curve's 1,000 sequences (the tables use 5,000).  Reads manifests only.
"""
from dataclasses import replace

import pandas as pd

from onion_gru import profiles, results
from onion_gru.analysis import METHODS
from onion_gru.profiles import get_profile

FRESH_WALL_MIN = 160.2  # `time make reproduce FRESH=1` of the shipped laptop cache (docs/results.md, timing)
ALTERNATIVES = {  # label: changes to the laptop analysis budget
    "shipped": {},
    "patience 2,500": {"patience": 2_500},
    "patience 2,000": {"patience": 2_000},
    "patience 1,500": {"patience": 1_500},
    "cap 20,000": {"max_steps": 20_000},
    "cap 15,000": {"max_steps": 15_000},
    "min_gain 0.02": {"min_gain": 0.02},
}


def replay(curves: pd.DataFrame, budget) -> pd.DataFrame:
    """One row per run: the step and curve accuracy at which ``budget`` stops it."""
    rows = []
    for key, c in curves.sort_values("step").groupby(["size", "variant", "seed", "method"]):
        i = budget.stop_index(c["step"].tolist(), c["accuracy"].tolist())
        assert i is not None, f"{key}: the shipped curve ends before this budget stops"
        rows.append(dict(zip(["size", "variant", "seed", "method"], key), step=c["step"].iloc[i],
                         accuracy=c["accuracy"].iloc[i]))
    return pd.DataFrame(rows)


def main():
    P = get_profile("laptop")
    runs = results.analysis_results(P, list(METHODS), shipped_only=True)
    curves = results.analysis_curves(P, list(METHODS), shipped_only=True)
    group = ["size", "variant", "method"]  # the laptop's groups: the two seeds of one size, variant, method
    seconds = runs.groupby(group)["train_seconds"].first()  # a group's time, recorded in each member
    shipped = replay(curves, P.analysis)
    check = shipped.merge(runs, on=group + ["seed"], validate="one_to_one")
    assert len(check) == len(runs) and (check["step"] == check["steps"]).all(), "the replay disagrees with the runs"
    rows = []
    for label, change in ALTERNATIVES.items():
        r = replay(curves, replace(P.analysis, **change)).merge(shipped, on=group + ["seed"], suffixes=("", "_shipped"))
        longest = r.groupby(group)[["step", "step_shipped"]].max()
        minutes = (seconds * longest["step"] / longest["step_shipped"]).sum() / 60
        cells = r.groupby(group)[["accuracy", "accuracy_shipped"]].mean()
        delta = cells["accuracy"] - cells["accuracy_shipped"]
        moved = delta.abs()
        rows.append({"budget": label, "analysis_worker_min": round(minutes, 1),
                     "estimated_wall_min": round(FRESH_WALL_MIN - (seconds.sum() / 60 - minutes) / 2, 1),
                     "runs_stopped_earlier": int((r["step"] < r["step_shipped"]).sum()),
                     "max_run_change": round((r["accuracy"] - r["accuracy_shipped"]).abs().max(), 3),
                     "max_cell_change": round(moved.max(), 3), "mean_cell_change": round(delta.mean(), 4),
                     "cells_up_0.01": int((delta >= 0.01).sum()), "cells_moved_0.01": int((moved >= 0.01).sum()),
                     "cells_moved_0.02": int((moved >= 0.02).sum()),
                     "worst_cell": " ".join(map(str, moved.idxmax())) if moved.max() else ""})
    table = pd.DataFrame(rows)
    out = profiles.ROOT / "figures" / "rule_replay.csv"
    table.to_csv(out, index=False)
    print(f"{len(shipped)} analyses in {len(seconds)} groups; the GRUs are not replayed")
    print(table.to_string(index=False))
    print(f"written to {out.relative_to(profiles.ROOT)}")


if __name__ == "__main__":
    main()

"""Reading results from the cache for the notebooks: one frame per kind of result, never computed
here.  ``python -m onion_gru train`` computes them, and a notebook that finds a result missing says
which command does (``MissingResults``).  Every reader walks a profile's entries through the one
enumeration of them (``jobs.profile_jobs``) and reads manifests only (``cache.read_manifest``),
so a result shipped without its weights reads like any other.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from . import cache
from .analysis import INTERVENTION_METHODS, METHODS
from .das import DAS_POSITIONS, DASConfig, das_cells, das_entry
from .jobs import entry, evaluation_entry, profile_jobs
from .profiles import Profile
from .train import RNNConfig, get_rnn


class MissingResults(LookupError):
    """A notebook asked for results the cache lacks; the message names the command that computes them."""

    def __init__(self, profile: Profile, labels: list[str]):
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        super().__init__(f"{len(labels)} results of profile {profile.name!r} are not in the cache ({shown}); "
                         f"compute them with: python -m onion_gru train --profile {profile.name}"
                         + ("" if profile.shipped else f"  (with ONION_GRU_DATA={profile.data})"))


def _found(profile: Profile, jobs, partial: bool, entry_of=entry):
    """(job, manifest) of each job whose entry (``entry_of``: the model's or analysis's, or its
    per-position evaluation's) is in the cache; missing ones raise ``MissingResults``, or with
    ``partial`` (an incomplete profile: an extension, a campaign in progress) are left out."""
    found, missing = [], []
    for job in jobs:
        manifest = cache.read_manifest(*entry_of(job))
        (found if manifest else missing).append((job, manifest) if manifest else job.label)
    if missing and not partial:
        raise MissingResults(profile, missing)
    return found


def _cell(profile: Profile, job) -> dict:
    return {"cell": profile.cell, "size": job.size, "variant": job.variant, "seed": job.seed}


def load_rnn(profile: Profile, size: int, variant: str, seed: int):
    """The profile's trained GRU (model, manifest) from the cache, never trained here."""
    config = RNNConfig.from_profile(profile, size, variant, seed)
    try:
        return get_rnn(config, device="cpu", train=False)
    except cache.Missing:
        raise MissingResults(profile, [config.label]) from None


def rnn_results(profile: Profile, partial: bool = False) -> pd.DataFrame:
    """One row per GRU of the profile: accuracies on valid (overall, greedy, by length) and longer sets,
    and the CPU it was trained on (its bits are that CPU's: docs/reproducibility.md)."""
    rows = []
    for job, manifest in _found(profile, profile_jobs(profile), partial):
        m = manifest["metrics"]
        rows.append({**_cell(profile, job), "steps": m["steps"], "flattened": m["flattened"],
                     "cpu": manifest["environment"].get("cpu_model"),
                     "accuracy": m["valid"]["accuracy"], "greedy_accuracy": m["valid"]["greedy_accuracy"],
                     **{f"length_{k}": v for k, v in m["valid"]["by_length"].items()}, **m["longer"]})
    return pd.DataFrame(rows)


def rnn_curves(profile: Profile, partial: bool = False) -> pd.DataFrame:
    """Validation accuracy against training steps, one row per (GRU, evaluation)."""
    return pd.DataFrame([{**_cell(profile, job), **point} for job, m in _found(profile, profile_jobs(profile), partial)
                         for point in m["metrics"]["curve"]])


def curve_agreement(reference: pd.DataFrame, run: pd.DataFrame, budget) -> dict:
    """How far two training curves of one config (frames with step, loss and accuracy, as
    ``rnn_curves`` gives) agree at the steps both recorded: the number of shared points, the first
    step whose loss or accuracy differs (None: equal at every point, as equal bits give), the largest
    differences, and the step at which ``budget``'s rule, replayed on ``run``'s curve, stops it (None:
    the curve ends first).  Notebook 12's same-run check and scripts/same_cpu_replay.py read it."""
    both = reference.merge(run, on="step", suffixes=("_reference", "_run"))
    differs = both[(both.loss_reference != both.loss_run) | (both.accuracy_reference != both.accuracy_run)].step
    stop = budget.stop_index(list(run.step), list(run.accuracy))
    return {"points": len(both), "first_difference": int(differs.min()) if len(differs) else None,
            "max_loss_difference": float((both.loss_reference - both.loss_run).abs().max()),
            "max_accuracy_difference": float((both.accuracy_reference - both.accuracy_run).abs().max()),
            "stop_by_rule": int(run.step.iloc[stop]) if stop is not None else None}


def ceiling(job, eval_set: str) -> float:
    """The GRU's own accuracy on the sequences a method of ``job`` is scored on (``eval_set``, the
    first ``eval_size`` of it): its validation accuracy for "valid" (the same sequences), its
    matched evaluation's for the length-9 set; NaN where that is not in the cache."""
    if eval_set == "valid":
        gru = cache.read_manifest(*entry(replace(job, method=None)))
        return gru["metrics"]["valid"]["accuracy"] if gru else np.nan
    matched = cache.read_manifest(*evaluation_entry(job, "matched"))
    same = matched and matched["metrics"]["eval_set"] == eval_set
    return matched["metrics"]["gru_accuracy"] if same else np.nan


def analysis_results(profile: Profile, methods, sizes=None, variants=None, partial: bool = False) -> pd.DataFrame:
    """One row per (GRU, method): accuracy (teacher-forced), free-running accuracy, floors, steps run,
    time, the set it is scored on and the GRU's own accuracy there (``gru_accuracy``, the ceiling),
    and the accuracy by sequence length (``length_2`` ...)."""
    rows = []
    for job, m in _found(profile, profile_jobs(profile, methods, sizes, variants, models=False), partial):
        eval_set, main = next((k, v) for k, v in m["metrics"].items() if isinstance(v, dict))
        rows.append({**_cell(profile, job), "method": job.method,
                     "accuracy": m["metrics"]["accuracy"], "greedy_accuracy": main["greedy_accuracy"],
                     "floor": main.get("floor", np.nan), "chance": m["metrics"]["chance"],
                     "steps": m["metrics"]["steps"], "flattened": m["metrics"]["flattened"],
                     "train_seconds": m["train_seconds"], "eval_set": eval_set,
                     "gru_accuracy": ceiling(job, eval_set),
                     **{f"length_{k}": v for k, v in main.get("by_length", {}).items()}})
    return pd.DataFrame(rows)


def analysis_curves(profile: Profile, methods, partial: bool = False) -> pd.DataFrame:
    """Accuracy on the curve subset against steps, one row per (GRU, method, evaluation)."""
    return pd.DataFrame([{**_cell(profile, job), "method": job.method, **point}
                         for job, m in _found(profile, profile_jobs(profile, methods, models=False), partial)
                         for point in m["metrics"]["curve"]])


def position_results(profile: Profile, methods=INTERVENTION_METHODS, kind: str = "positions_length9",
                     partial: bool = False) -> pd.DataFrame:
    """One row per (GRU, intervention, position): the accuracy with that position alone corrupted,
    its floor and examples (``analysis.evaluate_positions``, computed by ``train`` or ``evaluate``),
    and whether the intervention's own run flattened (else its numbers are lower bounds).  ``kind``:
    on the length-9 set for every method (default), or "positions", on each method's own set (the
    onion's: lengths 2-9, so its late positions have fewer examples).  On the length-9 set each row
    has the GRU's own accuracy on the same sequences (``gru_accuracy``, the ceiling: from the
    matched evaluation, which scores the same 5,000 sequences; NaN if it is missing)."""
    rows = []
    for job, m in _found(profile, profile_jobs(profile, methods, models=False), partial,
                         lambda job: evaluation_entry(job, kind)):
        flattened = cache.read_manifest(*entry(job))["metrics"]["flattened"]
        top = ceiling(job, m["metrics"]["eval_set"]) if m["metrics"]["eval_set"] != "valid" else np.nan
        rows += [{**_cell(profile, job), "method": job.method, "flattened": flattened, **point,
                  "gru_accuracy": top} for point in m["metrics"]["positions"]]
    return pd.DataFrame(rows)


def of_ceiling(score: float, ceiling: float) -> float:
    """A score as a fraction of its ceiling (the GRU's own accuracy on the same examples, or a
    probe's on the clean state): undefined, NaN, where the ceiling is 0."""
    return score / ceiling if ceiling else float("nan")


def matched_results(profile: Profile, methods=INTERVENTION_METHODS, sizes=None, partial: bool = False) -> pd.DataFrame:
    """One row per (GRU, intervention) scored on the length-9 sequences of the "intervention" set,
    whatever its own set (``analysis.EVALUATIONS``): its accuracy, floor, the GRU's own accuracy on
    the very same sequences (the ceiling) and their ratio, and whether the intervention's own run
    flattened."""
    rows = []
    matched = lambda job: evaluation_entry(job, "matched")
    for job, m in _found(profile, profile_jobs(profile, methods, sizes, models=False), partial, matched):
        r = m["metrics"]
        rows.append({**_cell(profile, job), "method": job.method, "accuracy": r["accuracy"], "floor": r["floor"],
                     "gru_accuracy": r["gru_accuracy"], "of_ceiling": of_ceiling(r["accuracy"], r["gru_accuracy"]),
                     "examples": r["examples"],
                     "flattened": cache.read_manifest(*entry(job))["metrics"]["flattened"]})
    return pd.DataFrame(rows)


def das_results(profile: Profile, positions=DAS_POSITIONS) -> pd.DataFrame:
    """One row per pyvene DAS run of the profile in the cache (``das.py``: each size and variant, its
    first seed, ``positions``): accuracy of the counterfactual, floor, rank, seconds per step."""
    found = [(gru, cache.read_manifest("das", *das_entry(gru, DASConfig.of(gru, p))))
             for gru in das_cells(profile) for p in positions]
    return pd.DataFrame([{"size": gru.hidden_size, "variant": gru.variant, "seed": gru.seed, **m["metrics"]}
                         for gru, m in found if m])


COST_COLUMNS = ["profile", "size", "variant", "seed", "method", "steps", "seconds", "group_size", "threads", "device",
                "core_hours", "copied_from", "snapshot_of"]


def run_costs(profile: Profile, methods=None) -> pd.DataFrame:
    """One row per model of the profile in the cache (its GRUs, ``method`` "gru", and its analyses,
    default the profile's): steps, the run's wall seconds (its whole group's, resumed runs summed),
    the group's size, torch threads, device and ``core_hours`` = seconds x threads / group size, the
    cores one model held for its run; an entry copied from another run names it in ``copied_from``, and
    a snapshot (a GRU kept on the way of a longer run, train.train_rnns) costs nothing of its own: 0,
    with the run's length in ``snapshot_of``."""
    cells = profile.grus()
    jobs = sorted(profile_jobs(profile, methods or profile.methods or METHODS),  # each GRU, then its analyses
                  key=lambda j: (cells.index((j.size, j.variant, j.seed)), j.method is not None))
    rows = []
    for job, m in _found(profile, jobs, partial=True):
        env, metrics = m["environment"], m["metrics"]
        group = metrics.get("group_size", 1)
        rows.append({"profile": profile.name, "size": job.size, "variant": job.variant, "seed": job.seed,
                     "method": job.method or "gru", "steps": metrics["steps"], "seconds": m["train_seconds"],
                     "group_size": group, "threads": env["threads"], "device": "cuda" if env.get("cuda") else "cpu",
                     "core_hours": 0.0 if "snapshot_of" in metrics else m["train_seconds"] * env["threads"] / group / 3600,
                     "copied_from": (m.get("copied_from") or {}).get("profile"), "snapshot_of": metrics.get("snapshot_of")})
    return pd.DataFrame(rows, columns=COST_COLUMNS)


RUN_KEY = ["size", "variant", "seed", "method", "steps", "seconds"]  # one run of one model, whichever profile lists it


def counted_once(tables: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """``run_costs`` tables with every run counted once: each keeps the rows that are neither copies of
    another run's entry (``copied_from``) nor a run an earlier table (or an earlier row of its own) holds
    (profiles share configs, hence entries: the grid's N = 48 GRU is the laptop's)."""
    kept, seen = [], set()
    for table in tables:
        rows = table[table.copied_from.isna()]
        new = [run not in seen and not seen.add(run) for run in rows[RUN_KEY].itertuples(index=False, name=None)]
        kept.append(rows[pd.Series(new, index=rows.index, dtype=bool)])  # (add returns None: the first is kept)
    return kept

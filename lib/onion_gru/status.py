"""``python -m onion_gru status [--profile ...]``: per profile, which models and analyses are done,
done at their cap (lower bounds), in progress (a checkpoint and its step, or a write under way),
damaged (left for ``train`` to set aside and recompute) or missing, and the
worker-hours still to go, estimated from the rates the cache's manifests and checkpoints record.

The estimate for a job: its steps (the median of the finished jobs of its size and method, in any
profile, at most its cap; the cap where none has finished) less the steps its checkpoint has done,
times the worker-seconds a model of its size, method and rotation took per step (a group of K on
one worker: the group's step time over K; from the checkpoints of running groups where nothing of
that kind has finished).  Rates are as recorded, on whatever machine trained each entry.  Where
none is recorded, the estimate is unknown and said so.
"""
from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict

from . import cache
from .checkpoint import checkpoints
from .analysis import EVALUATIONS, INTERVENTION_METHODS, evaluations_of
from .jobs import entry, evaluation_entry, profile_jobs
from .profiles import Profile

STATES = ("done", "capped", "in progress", "damaged", "missing")


def _kind_of(kind: str, label: str, config: dict) -> tuple:
    """What sets a job's rate: kind, size, method and rotation (None, None for GRUs)."""
    size = int(re.search(r"N(\d+)-", label).group(1))
    return kind, size, config.get("method"), config.get("orthogonal_map", "matrix_exp") if kind == "analysis" else None


def recorded_rates(root=None) -> tuple[dict, dict]:
    """From every manifest: ``_kind_of`` -> worker-seconds per model-step (median) and steps run
    (median); then, for kinds no manifest has, the rate of the checkpoints of groups in progress."""
    rates, steps = defaultdict(list), defaultdict(list)
    for path in sorted((root or cache.data_root()).glob("*/*/manifest.json")):
        manifest = json.loads(path.read_text())
        metrics = manifest["metrics"]
        if "seconds_per_step" not in metrics or not metrics.get("steps"):
            continue
        key = _kind_of(path.parent.parent.name, path.parent.name, manifest["config"])
        rates[key].append(metrics["seconds_per_step"] / metrics.get("group_size", 1))
        steps[key].append(metrics["steps"])
    for info in checkpoints(root):
        if "kind" not in info:  # written before checkpoints named their kind
            continue
        key = _kind_of(info["kind"], info["name"], info["config"])
        if key not in steps:
            rates[key].append(info["seconds"] / max(info["step"], 1) / len(info["meta"]["members"]))
    return ({k: statistics.median(v) for k, v in rates.items()}, {k: statistics.median(v) for k, v in steps.items()})


def job_rows(profile: Profile, methods, root=None) -> list[dict]:
    """One row per job of ``profile`` (its GRUs, then each GRU's ``methods``) in the cache at ``root``
    (default: ``cache.data_root()``): state, step, estimate; after each intervention its evaluations
    (``analysis.EVALUATIONS``: done or missing; ``train`` or ``evaluate`` computes them in minutes,
    so no estimate)."""
    rates, steps = recorded_rates(root)
    running = {key: info for info in checkpoints(root) for key in info["meta"]["members"]}
    rows = []
    for job in profile_jobs(profile, methods):
        kind, label, config = entry(job)
        state, budget = cache.state(kind, label, config, root), config["budget"]
        row = {"profile": profile.name, "job": job.label, "kind": kind, "size": job.size, "method": job.method,
               "step": None, "hours_left": 0.0}
        if cache.is_done(kind, label, config, root):  # the one definition of done
            metrics = cache.read_manifest(kind, label, config, root)["metrics"]
            fixed = not budget["patience"]  # a fixed budget runs to its end by design: not a cap
            row.update(state="done" if fixed or metrics.get("flattened", True) else "capped", step=metrics.get("steps"))
        else:
            info = running.get(cache.entry_key(label, config))
            row.update(state="in progress" if info or state == cache.IN_PROGRESS else
                       "damaged" if state == cache.DAMAGED else "missing", step=info["step"] if info else 0)
            rate = rates.get(_kind_of(kind, label, config))
            expected = min(steps.get(_kind_of(kind, label, config), budget["max_steps"]), budget["max_steps"])
            row["hours_left"] = None if rate is None else max(expected - row["step"], 0) * rate / 3600
        rows.append(row)
        for kind in evaluations_of(job.method) if job.method in INTERVENTION_METHODS else ():
            done = cache.is_done(*evaluation_entry(job, kind), root)
            rows.append({**row, "job": f"{job.label} ({EVALUATIONS[kind][0]})", "kind": kind, "step": None,
                         "hours_left": 0.0, "state": "done" if done else "missing"})
    return rows


def report(profiles: list[Profile], methods_of) -> str:
    """The text ``status`` prints: a count line per profile, then every job not yet done."""
    lines = []
    for profile in profiles:
        rows = job_rows(profile, methods_of(profile))
        counts = {state: sum(r["state"] == state for r in rows) for state in STATES}
        known = [r["hours_left"] for r in rows if r["hours_left"] is not None]
        unknown = sum(r["hours_left"] is None for r in rows)
        lines.append(f"profile {profile.name}: " + ", ".join(f"{n} {state}" for state, n in counts.items())
                     + f" of {len(rows)} jobs; about {sum(known):.1f} worker-hours left"
                     + (f" (+ {unknown} jobs with no recorded rate of their size and method)" if unknown else ""))
        for r in rows:
            if r["state"] == "done":
                continue
            left = "" if r["state"] == "capped" else (
                "  ? h left" if r["hours_left"] is None else f"  {r['hours_left']:.1f} h left")
            lines.append(f"  {r['state']:<11} {r['job']}  step {r['step'] or 0:,}{left}")
    return "\n".join(lines)

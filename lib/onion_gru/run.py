"""Running jobs (``jobs.py``): the groups they run in and the executors that run the groups.

Jobs of the same size and method run as one group, one batched model in one process (packed.py,
layers.py), which writes each member's entry when the group is done.  Local: worker processes,
each limited to cores // workers torch threads (two 2-thread processes on 2 cores ran 38x slower
here).  SLURM: one task per group through submitit.  A group in training checkpoints itself
every few minutes (checkpoint.Checkpoint): a killed worker loses at most those minutes, and the same
command run again continues each group where its checkpoint left it.  Past a deadline (``train
--stop-after``), or on SIGTERM (``stop_now``: a session ending early), every running group
checkpoints and stops, and no group starts.  A group whose
entries another process is computing, or whose checkpoint was saved otherwise, is refused and
the others go on.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
import multiprocessing as mp

from . import cache
from .checkpoint import Busy, CheckpointMismatch
from .jobs import Job, configs_of, evaluation_entry, has_weights, key, profile_jobs, trained_by

# Most models per group.  CPU: measured (docs/performance.md): a step's cost grows linearly with K
# beyond 2, and 2 workers x 1 thread running pairs beat every other layout of the train stage.
# CUDA: a step is launch-bound, so the group is as large as a size's jobs allow (not yet measured).
MAX_GROUP = {"cpu": 2, "cuda": 16}


def default_max_group() -> int:
    import torch
    return MAX_GROUP["cuda" if torch.cuda.is_available() else "cpu"]


def plan_groups(jobs: list[Job], max_group: int) -> list[list[Job]]:
    """Jobs that can run as one group: the same profile, size and method (GRUs: method None), at most
    ``max_group`` each; GRUs first, then analyses, each largest size first.  Variants and seeds mix
    freely within a group."""
    by_kind: dict[tuple, list[Job]] = {}
    for job in jobs:
        by_kind.setdefault((job.size, job.method or "", job.profile), []).append(job)
    groups = []
    for (size, _, _), members in sorted(by_kind.items(), key=lambda item: (item[0][1] != "", -item[0][0])):
        n = -(-len(members) // max_group)  # as few groups as the cap allows, of even sizes
        cuts = [len(members) * i // n for i in range(n + 1)]
        # consecutive jobs (the same variant, in profile order) share a group: they converge at
        # about the same step, and a group runs until its last member stops
        groups += [members[a:b] for a, b in zip(cuts, cuts[1:])]
    return groups


_STOP = threading.Event()  # set by SIGTERM (``stop_now``): the deadline is now


def stop_now(*_) -> None:
    """A signal handler (``train`` installs it for SIGTERM, in every worker too): checkpoint the
    running groups at their next step and start no other, as when the deadline passes."""
    _STOP.set()


def past(deadline: float | None) -> bool:
    return _STOP.is_set() or (deadline is not None and time.time() > deadline)


def run_group(jobs: list[Job], threads: int | None = None, deadline: float | None = None) -> list[dict]:
    """Compute one group of jobs into the cache (one entry per job), or, past ``deadline`` (a
    ``time.time()``), checkpoint it and stop; one summary line per job."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    from .analysis import get_analyses
    from .train import get_rnns
    from .loop import Stopped
    start = time.time()
    configs = [configs_of(job) for job in jobs]
    grus = [gru for gru, _ in configs]
    stop = lambda: past(deadline)
    try:
        if jobs[0].method is None:  # with the snapshots the same runs make (jobs.trained_by), after the jobs' own
            snapshots = [configs_of(made)[0] for job in jobs for made in trained_by(job)[1:]]
            manifests = get_rnns(grus + snapshots, eval_size=jobs[0].profile.eval_size, stop=stop)[1][:len(grus)]
            accuracies = [m["metrics"]["valid"]["accuracy"] for m in manifests]
        else:
            manifests = get_analyses(grus, [analysis for _, analysis in configs], stop=stop)[1]
            accuracies = [m["metrics"]["accuracy"] for m in manifests]
    except (Stopped, Busy, CheckpointMismatch, cache.Missing) as stopped:
        # a stop with a checkpoint, an entry another process computes, a checkpoint saved otherwise
        # (kept), a model shipped without weights: this group ends here, the others go on
        kind = "stopped" if isinstance(stopped, Stopped) else "refused"
        return [{"label": job.label, "accuracy": None, "seconds": time.time() - start, "group_size": len(jobs),
                 kind: str(stopped)} for job in jobs]
    seconds = time.time() - start
    return [{"label": job.label, "accuracy": a, "seconds": seconds, "group_size": len(jobs),
             "steps": m["metrics"]["steps"], "flattened": m["metrics"]["flattened"]}
            for job, a, m in zip(jobs, accuracies, manifests)]


def _init_worker(threads: int):
    os.environ["ONION_GRU_QUIET"] = "1"
    signal.signal(signal.SIGTERM, stop_now)
    import torch
    torch.set_num_threads(threads)


def needs(groups: list[list[Job]]) -> list[set[int]]:
    """For each group, the groups among ``groups`` that train the GRUs its analyses read (found by
    the GRU's entry, whichever profile's job trains it)."""
    trains = {key(made): i for i, group in enumerate(groups) for job in group if job.method is None
              for made in trained_by(job)}
    return [{trains[gru] for job in group if job.method and (gru := key(replace(job, method=None))) in trains}
            for group in groups]


def next_group(pending: list[int], done: set[int], needed: list[set[int]]) -> int | None:
    """The first pending group whose GRUs are all trained, or None."""
    return next((i for i in pending if needed[i] <= done), None)


def run_jobs(jobs: list[Job], workers: int, executor: str = "local", slurm: dict | None = None,
             max_group: int | None = None, deadline: float | None = None) -> list[dict]:
    """Run ``jobs`` (GRUs and analyses) as groups (``plan_groups``; ``max_group`` None: this device's
    default) on ``workers`` processes, workers x threads <= cores.  GRU groups start first, largest
    first; an analysis group starts as soon as the GRUs it reads are trained, so the first analyses
    run while the slowest GRUs still train (no worker waits for a stage to end).  Past ``deadline``
    (a ``time.time()``; local executor) no group starts and the running ones checkpoint and stop
    (``run_group``): a session's end, or a time-boxed GPU window."""
    if not jobs:
        return []
    groups = plan_groups(jobs, max_group or default_max_group())
    if executor == "slurm":
        return _run_submitit([g for g in groups if g[0].method is None], slurm or {}) + \
            _run_submitit([g for g in groups if g[0].method is not None], slurm or {})
    cores = os.cpu_count() or 1
    workers = max(1, min(workers, len(groups), cores))
    threads = max(1, cores // workers)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # a caller that limits threads is obeyed
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    needed, pending, done = needs(groups), list(range(len(groups))), set()
    results, start = [], time.time()
    accepting = lambda: not past(deadline)
    if workers == 1:
        while accepting() and (i := next_group(pending, done, needed)) is not None:
            pending.remove(i)
            results += (group_results := run_group(groups[i], threads, deadline))
            if computed(group_results):
                done.add(i)
            _report(results, len(jobs), start)
        return results
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        running: dict = {}
        while True:
            while len(running) < workers and accepting() and (i := next_group(pending, done, needed)) is not None:
                pending.remove(i)
                running[pool.submit(run_group, groups[i], None, deadline)] = i
            if not running:
                return results
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                results += fut.result()
                i = running.pop(fut)
                if computed(fut.result()):
                    done.add(i)
                _report(results, len(jobs), start)


def evaluations(plans, deadline: float | None = None) -> list[str]:
    """Evaluate every trained intervention of each (profile, methods) plan in each way of
    ``analysis.EVALUATIONS`` (one position at a time, on its own set and on the length-9 set; on the
    length-9 set beside the GRU's own accuracy) where the cache lacks it: evaluation of cached models, no training, one group per
    size, method and kind in this process.  Skips the cells whose GRU or intervention is not in the
    cache whole (still training, or a GPU entry shipped without weights); none start past
    ``deadline``.  One line per evaluation, printed as it is done and returned."""
    from .analysis import INTERVENTION_METHODS, evaluations_of, get_evaluations
    lines, seen = [], set()
    for profile, methods in plans:
        for method in (m for m in methods if m in INTERVENTION_METHODS):
            for size in profile.sizes:
                for kind in evaluations_of(method):
                    todo = []
                    for job in profile_jobs(profile, [method], sizes=[size], models=False):
                        target = evaluation_entry(job, kind)
                        here = cache.entry_key(*target[1:])
                        if (here not in seen and not cache.is_done(*target) and has_weights(job)
                                and has_weights(replace(job, method=None))):
                            seen.add(here)
                            todo.append((job, *configs_of(job)))
                    if not todo or past(deadline):
                        continue
                    manifests = get_evaluations(kind, [g for _, g, _ in todo], [a for _, _, a in todo])
                    for (job, _, _), m in zip(todo, manifests):
                        lines.append(f"{job.label}: " + _said(kind, m["metrics"]))
                        print(lines[-1], flush=True)
    return lines


def _said(kind: str, metrics: dict) -> str:
    if "positions" in metrics:
        return "by position " + " ".join(f"{r['accuracy']:.2f}" for r in metrics["positions"])
    return f"length 9 {metrics['accuracy']:.3f} (the GRU's own {metrics['gru_accuracy']:.3f})"


def computed(group_results: list[dict]) -> bool:
    """Whether a group's entries were computed (not stopped, not refused)."""
    return not (group_results[0].get("stopped") or group_results[0].get("refused"))


def _report(results: list[dict], total: int, start: float):
    """One line per job of the group that just finished or stopped."""
    done = len(results)
    eta = (time.time() - start) / done * (total - done)
    group = results[-results[-1]["group_size"]:]
    for i, result in enumerate(group):
        if result.get("stopped"):
            outcome = f"{result['stopped']}, checkpointed: the same command continues it"
        elif result.get("refused"):
            outcome = f"not computed: {result['refused']}"
        else:
            outcome = (f"accuracy {result['accuracy']:.3f} after {result['steps']:,} steps"
                       + ("" if result["flattened"] else " (not flattened)"))
        print(f"[{done - len(group) + i + 1}/{total}] {result['label']}: {outcome} "
              f"(group of {result['group_size']}, {result['seconds']:.0f} s; ETA {eta / 60:.1f} min)", flush=True)


def _run_submitit(groups: list[list[Job]], slurm: dict) -> list[dict]:
    """One SLURM task per group; ``cluster='local'`` (for tests) runs them as local processes."""
    import submitit
    folder = slurm.get("folder") or str(cache.data_root().parent / "build" / "submitit")
    executor = submitit.AutoExecutor(folder=folder, cluster=slurm.get("cluster"))
    params = {"timeout_min": slurm.get("minutes", 240), "cpus_per_task": slurm.get("cpus", 2)}
    if executor.cluster == "slurm":
        params.update(slurm_partition=slurm.get("partition"), gpus_per_node=slurm.get("gpus", 0))
    executor.update_parameters(**params)
    submitted = executor.map_array(run_group, groups, [slurm.get("cpus", 2)] * len(groups))
    results, start = [], time.time()
    for task in submitted:
        results += task.result()
        _report(results, sum(map(len, groups)), start)
    return results

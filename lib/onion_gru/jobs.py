"""Jobs of a profile (one per GRU, one per GRU x analysis) and the executors that run them.

Local: worker processes, each limited to cores // workers torch threads (two 2-thread processes on 2
cores ran 38x slower here).  SLURM: the same job function through submitit.  A job writes its
result to the cache itself, so a killed worker leaves nothing behind but an unfinished entry that
is never marked done.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
import multiprocessing as mp

from . import cache
from .profiles import Profile


@dataclass(frozen=True)
class Job:
    profile: Profile
    size: int
    variant: str
    seed: int
    method: str | None = None  # None: train the GRU

    @property
    def label(self) -> str:
        return f"N{self.size}-{self.variant}-s{self.seed}" + (f"-{self.method}" if self.method else "")


def _configs(job: Job):
    from .analysis import AnalysisConfig
    from .train import GRUConfig
    gru = GRUConfig.from_profile(job.profile, job.size, job.variant, job.seed)
    return gru, (AnalysisConfig.from_profile(job.profile, job.method, gru) if job.method else None)


def is_done(job: Job) -> bool:
    gru, analysis = _configs(job)
    if analysis is None:
        return cache.is_cached("gru", gru.label, asdict(gru))
    return cache.is_cached("analysis", f"{gru.label}-{job.method}", asdict(analysis))


def missing_jobs(profile: Profile, methods) -> tuple[list[Job], list[Job]]:
    cells = profile.grus()
    grus = [Job(profile, *c) for c in cells]
    analyses = [Job(profile, *c, m) for c in cells for m in methods]
    # largest first, so the longest job does not start last
    key = lambda j: -j.size
    return (sorted([j for j in grus if not is_done(j)], key=key),
            sorted([j for j in analyses if not is_done(j)], key=key))


def run_job(job: Job, threads: int | None = None) -> dict:
    """Compute one job into the cache; returns a one-line summary."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    from .analysis import get_analysis
    from .train import get_gru
    start = time.time()
    gru, analysis = _configs(job)
    if analysis is None:
        manifest = get_gru(gru, eval_size=job.profile.eval_size)[1]
        accuracy = manifest["metrics"]["valid"]["accuracy"]
    else:
        manifest = get_analysis(gru, analysis)[1]
        accuracy = manifest["metrics"]["accuracy"]
    return {"label": job.label, "accuracy": accuracy, "seconds": time.time() - start}


def _init_worker(threads: int):
    os.environ["ONION_GRU_QUIET"] = "1"
    import torch
    torch.set_num_threads(threads)


def run_jobs(jobs: list[Job], workers: int, executor: str = "local", slurm: dict | None = None) -> list[dict]:
    if not jobs:
        return []
    if executor == "slurm":
        return _run_submitit(jobs, slurm or {})
    cores = os.cpu_count() or 1
    workers = max(1, min(workers, len(jobs), cores))
    threads = max(1, cores // workers)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # a caller that limits threads is obeyed
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    results, start = [], time.time()
    if workers == 1:
        for i, job in enumerate(jobs):
            results.append(run_job(job, threads))
            _report(results[-1], i + 1, len(jobs), start)
        return results
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for i, fut in enumerate(as_completed(futures)):
            results.append(fut.result())
            _report(results[-1], i + 1, len(jobs), start)
    return results


def _report(result: dict, done: int, total: int, start: float):
    eta = (time.time() - start) / done * (total - done)
    print(f"[{done}/{total}] {result['label']}: accuracy {result['accuracy']:.3f} "
          f"({result['seconds']:.0f} s; ETA {eta / 60:.1f} min)", flush=True)


def _run_submitit(jobs: list[Job], slurm: dict) -> list[dict]:
    """One SLURM task per job; ``cluster='local'`` (for tests) runs them as local processes."""
    import submitit
    folder = slurm.get("folder") or str(cache.data_root().parent / "build" / "submitit")
    executor = submitit.AutoExecutor(folder=folder, cluster=slurm.get("cluster"))
    params = {"timeout_min": slurm.get("minutes", 240), "cpus_per_task": slurm.get("cpus", 2)}
    if executor.cluster == "slurm":
        params.update(slurm_partition=slurm.get("partition"), gpus_per_node=slurm.get("gpus", 0))
    executor.update_parameters(**params)
    submitted = executor.map_array(run_job, jobs, [slurm.get("cpus", 2)] * len(jobs))
    results, start = [], time.time()
    for i, job in enumerate(submitted):
        results.append(job.result())
        _report(results[-1], i + 1, len(jobs), start)
    return results

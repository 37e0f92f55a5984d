"""The jobs of a profile (one per model, one per model x analysis) and their cache entries: the
one enumeration of what a profile computes, read by ``train`` (``run.py``), ``status`` and the
notebooks' readers (``results.py``) alike.  A job is one model and one cache entry.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

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
        return configs_of(self)[0].label + (f"-{self.method}" if self.method else "")


def configs_of(job: Job):
    from .analysis import AnalysisConfig
    from .train import RNNConfig
    gru = RNNConfig.from_profile(job.profile, job.size, job.variant, job.seed)
    return gru, (AnalysisConfig.from_profile(job.profile, job.method, gru) if job.method else None)


def entry(job: Job) -> tuple[str, str, dict]:
    """The cache kind, label and config of the job's entry."""
    from .analysis import analysis_entry
    from .train import rnn_entry
    gru, analysis = configs_of(job)
    return ("gru", *rnn_entry(gru)) if analysis is None else ("analysis", *analysis_entry(gru, analysis))


def evaluation_entry(job: Job, kind: str) -> tuple[str, str, dict]:
    """The cache kind, label and config of the entry that holds one evaluation of an intervention job
    (``analysis.EVALUATIONS``; two evaluations that are the same are one entry: ``analysis.stored_as``)."""
    from .analysis import evaluation_entry as entry_of, stored_as
    return (stored_as(kind, job.method), *entry_of(kind, *configs_of(job)))


def is_done(job: Job) -> bool:
    return cache.is_done(*entry(job))


def has_weights(job: Job) -> bool:
    """Whether the job's model is in the cache whole, so that other work can read it."""
    return cache.state(*entry(job)) == cache.DONE


def profile_jobs(profile: Profile, methods=(), sizes=None, variants=None, models: bool = True) -> list[Job]:
    """The one enumeration of a profile's entries: its models (``models``), then each model's
    ``methods``, in the profile's order, restricted to ``sizes`` and ``variants`` if given."""
    cells = [(n, v, s) for n, v, s in profile.grus() if (not sizes or n in sizes) and (not variants or v in variants)]
    return [Job(profile, *c) for c in cells if models] + [Job(profile, *c, m) for c in cells for m in methods]


def missing_jobs(profile: Profile, methods) -> tuple[list[Job], list[Job]]:
    """The profile's models and analyses not done (``cache.is_done``), each largest size first, so
    that the longest job does not start last."""
    todo = sorted([job for job in profile_jobs(profile, methods) if not is_done(job)], key=lambda j: -j.size)
    return [j for j in todo if j.method is None], [j for j in todo if j.method]


def key(job: Job) -> str:
    """The job's cache entry, ``<kind>/<label>-<hash>``: jobs of two profiles that share it are one."""
    kind, label, config = entry(job)
    return f"{kind}/{cache.entry_key(label, config)}"


def unique(jobs: list[Job]) -> list[Job]:
    """``jobs`` without the repeats of an entry (the first job of each entry stays, in its place) and
    without the snapshots that another job's run makes (``trained_by``)."""
    first: dict[str, Job] = {}
    for job in jobs:
        first.setdefault(key(job), job)
    made = {key(snapshot) for job in first.values() for snapshot in trained_by(job)[1:]}
    return [job for k, job in first.items() if k not in made]


def trained_by(job: Job) -> list[Job]:
    """The job, and for a GRU of a profile with snapshots, the GRU jobs of its snapshots: one run
    trains them all (``train.train_rnns``)."""
    from .profiles import at_step
    if job.method is not None:
        return [job]
    return [job] + [replace(job, profile=at_step(job.profile, step)) for step in job.profile.snapshots]


def reuse_replayed(job: Job) -> str | None:
    """Give a missing GRU job the entry of the same model trained under a budget that differs only in
    its cap, when that run stopped by the rule before its cap and this job's budget, replayed on its
    curve (``Budget.stop_index``; training does not depend on the cap), stops it at the same step:
    the same run.  Returns what was reused, or None."""
    from .profiles import PROFILES
    from .train import RNNConfig, rnn_entry
    kind, label, config = entry(job)
    if kind != "gru":
        return None
    budget = job.profile.gru
    for other in PROFILES.values():
        if other.gru == budget or replace(other.gru, max_steps=0) != replace(budget, max_steps=0):
            continue
        source = RNNConfig.from_profile(other, job.size, job.variant, job.seed)
        if {**asdict(source), "budget": None} != {**config, "budget": None} or cache.state("gru", *rnn_entry(source)) != cache.DONE:
            continue
        metrics = cache.read_manifest("gru", *rnn_entry(source))["metrics"]
        steps, accuracies = [p["step"] for p in metrics["curve"]], [p["accuracy"] for p in metrics["curve"]]
        if metrics["flattened"] and budget.stop_index(steps, accuracies) == len(steps) - 1:
            note = {"profile": other.name, "why": f"flattened at {steps[-1]:,} of its {other.gru.max_steps:,}-step cap; "
                    f"the same rule stops it there under a cap of {budget.max_steps:,}"}
            cache.copy_entry("gru", rnn_entry(source), (label, config), note)
            return f"{job.label}: reused from profile {other.name} ({note['why']})"
    return None

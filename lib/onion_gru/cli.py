"""Command line: ``python -m onion_gru train --profile laptop [--sizes 48 64] [--workers 2]``.

``train`` trains every GRU the profile needs and is missing from the cache, then every analysis
(interventions and probes) on them, as groups of models of one size and method (run.plan_groups),
in parallel worker processes with workers x threads <= cores.  Each finished group is written to the
cache at once, one entry per model; a group in training checkpoints itself every few minutes, so
killing the command loses at most those minutes, and running it again continues every group from
its checkpoint.  ``--stop-after MINUTES`` checkpoints every running group and exits by then (before
a session ends).  After training, ``train`` (and ``evaluate`` alone) evaluates every trained
intervention one position at a time and on the length-9 set (run.evaluations), into the cache.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from .profiles import DEFAULT_PROFILE, PROFILES, get_profile, with_snapshots


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="onion_gru", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train what a profile needs and the cache lacks")
    t.add_argument("--profile", nargs="+", default=[DEFAULT_PROFILE],
                   help=f"one or more of {sorted(PROFILES)} (several: their jobs share the workers)")
    t.add_argument("--sizes", type=int, nargs="+")
    t.add_argument("--variants", nargs="+")
    t.add_argument("--seeds", type=int, nargs="+")
    t.add_argument("--methods", nargs="+", help="analyses to run (default: the profile's); 'none' for GRUs only")
    t.add_argument("--with-extensions", action="store_true",
                   help="also the profiles notebooks 07 and 08 read beside each (Profile.extensions)")
    t.add_argument("--workers", type=int, default=None, help="worker processes (default: cores, at most 2)")
    t.add_argument("--group", type=int, default=None,
                   help="most models trained together as one batched group (default: 2 on CPU, 16 on CUDA)")
    t.add_argument("--executor", choices=("local", "slurm"), default="local")
    t.add_argument("--slurm-partition", default=None)
    t.add_argument("--slurm-gpus", type=int, default=0)
    t.add_argument("--slurm-minutes", type=int, default=240)
    t.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                   help="checkpoint every running group and exit after this many minutes (rerun to continue)")
    t.add_argument("--dry-run", action="store_true", help="list the missing jobs and stop")
    t.add_argument("--discard-checkpoints", action="store_true",
                   help="set aside (under checkpoints/discarded/) a checkpoint saved with other threads, code, "
                        "CPU or torch and start its group from step 0; without it such a group is refused")
    t.add_argument("--continue-elsewhere", action="store_true",
                   help="continue a checkpoint saved on another CPU or torch (the same threads, group and code)")
    st = sub.add_parser("status", help="what each profile has done, has in progress and lacks (onion_gru.status)")
    st.add_argument("--profile", nargs="+", default=[DEFAULT_PROFILE], help=f"one or more of {sorted(PROFILES)}")
    st.add_argument("--methods", nargs="+", help="analyses to count (default: the profile's); 'none' for GRUs only")
    where = sub.add_parser("where", help="print a profile's folder: its cache, figures or executed notebooks")
    where.add_argument("--profile", default=DEFAULT_PROFILE)
    where.add_argument("what", choices=("data", "figures", "notebooks"))
    docs = sub.add_parser("docs", help="regenerate the tables of README.md and docs/ from figures/ (onion_gru.docs)")
    docs.add_argument("--check", action="store_true", help="only list the stale documents (exit 1 if any)")
    ev = sub.add_parser("evaluate", help="evaluate the profiles' trained interventions one position at a time and on "
                        "the length-9 set "
                        "(no training; `train` does it too)")
    ev.add_argument("--profile", nargs="+", default=[DEFAULT_PROFILE], help=f"one or more of {sorted(PROFILES)}")
    ev.add_argument("--stop-after", type=float, metavar="MINUTES", help="start no evaluation after this many minutes")
    das = sub.add_parser("das", help="pyvene's own DAS, one position at a time, on the profiles' cached GRUs "
                         "(the optional extra pyvene; onion_gru.das)")
    das.add_argument("--profile", nargs="+", default=[DEFAULT_PROFILE], help=f"one or more of {sorted(PROFILES)}")
    das.add_argument("--sizes", type=int, nargs="+", help="only these sizes (of those each profile has)")
    das.add_argument("--positions", type=int, nargs="+", default=None, help="default: das.DAS_POSITIONS")
    sub.add_parser("bench", help="time training steps against plain PyTorch (see onion_gru.bench)")
    tidy = sub.add_parser("tidy-notebook", help="drop timings and random cell ids from executed notebooks")
    tidy.add_argument("paths", nargs="+")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main
        return bench_main()
    if args.command == "where":
        if (profile := _profiles([args.profile])) is None:
            return 2
        profile = profile[0]
        print({"data": profile.data or "data", "figures": profile.figure_dir(), "notebooks": profile.notebook_dir()}[args.what])
        return 0
    if args.command == "docs":
        from .docs import update
        stale = update(check=args.check)
        for path in stale:
            print(f"{'stale' if args.check else 'rewrote'}: {path}")
        return 1 if args.check and stale else 0
    if args.command == "das":
        from dataclasses import replace
        from .das import DAS_POSITIONS
        from .pyvene_glue import run_das
        if (profiles := _profiles(args.profile)) is None:
            return 2
        profiles = [replace(p, sizes=tuple(n for n in p.sizes if not args.sizes or n in args.sizes)) for p in profiles]
        run_das(profiles, tuple(args.positions or DAS_POSITIONS))
        return 0
    if args.command == "tidy-notebook":
        from .notebook import tidy_notebook
        for path in args.paths:
            tidy_notebook(path)
        return 0
    from .analysis import METHODS
    from .checkpoint import DISCARD_ENV, ELSEWHERE_ENV
    from .jobs import missing_jobs, reuse_replayed, unique
    from .run import evaluations, run_jobs, stop_now
    if args.command == "evaluate":
        if (profiles := _profiles(args.profile)) is None:
            return 2
        deadline = time.time() + 60 * args.stop_after if args.stop_after else None
        evaluations([(p, chosen_methods(p, None)) for p in profiles], deadline)
        return 0
    if args.command == "status":
        from .status import report
        if (profiles := _profiles(args.profile)) is None:
            return 2
        print(report(profiles, lambda p: chosen_methods(p, args.methods)))
        return 0
    try:
        names = list(args.profile)
        if args.with_extensions:
            names += [ext for name in args.profile for _, ext in get_profile(name).extensions]
        profiles = [p.check(args.sizes, args.variants, args.seeds) for p in _profiles(dict.fromkeys(names), raises=True)]
        plans = [(p, chosen_methods(p, args.methods)) for p in profiles]
        bad = [m for _, methods in plans for m in methods if m not in METHODS]
        if bad:
            raise ValueError(f"unknown method {bad}; choose from {sorted(METHODS)} or 'none'")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    gru_jobs, analysis_jobs = [], []
    for profile, methods in plans:
        grus, analyses = missing_jobs(profile, methods)
        gru_jobs, analysis_jobs = gru_jobs + grus, analysis_jobs + analyses
        print(f"profile {profile.name}: {len(grus)} models and {len(analyses)} analyses to compute")
    gru_jobs, analysis_jobs = unique(gru_jobs), unique(analysis_jobs)  # an entry two profiles share runs once
    if not args.dry_run:
        reused = [(job, reuse_replayed(job)) for job in gru_jobs]
        for _, line in reused:
            if line:
                print(line)
        gru_jobs = [job for job, line in reused if not line]
    if args.dry_run:
        for job in gru_jobs + analysis_jobs:
            print("  ", job.label)
        return 0
    if args.discard_checkpoints:
        os.environ[DISCARD_ENV] = "1"  # read by every worker's Checkpoint.load
    if args.continue_elsewhere:
        os.environ[ELSEWHERE_ENV] = "1"
    signal.signal(signal.SIGTERM, stop_now)  # kill -TERM: checkpoint and stop, as at the deadline
    start = time.time()
    workers = args.workers or min(2, os.cpu_count() or 1)
    deadline = start + 60 * args.stop_after if args.stop_after is not None else None
    results = run_jobs(gru_jobs + analysis_jobs, workers, args.executor, max_group=args.group, deadline=deadline,
                       slurm={"partition": args.slurm_partition, "gpus": args.slurm_gpus, "minutes": args.slurm_minutes})
    evaluations(plans, deadline)
    print(summary(gru_jobs + analysis_jobs, results, time.time() - start))
    return 0


def _profiles(names, raises: bool = False):
    """The named profiles, each followed by its snapshots (``profiles.with_snapshots``: training
    a dynamics profile makes and analyses them all), or None after printing why not (an unknown name)."""
    try:
        return [p for name in names for p in with_snapshots(get_profile(name))]
    except ValueError as err:
        if raises:
            raise
        print(f"error: {err}", file=sys.stderr)
        return None


def chosen_methods(profile, asked) -> list[str]:
    """The analyses a command covers: ``--methods`` as given ('none': GRUs only), else the profile's."""
    from .analysis import METHODS
    return [] if asked == ["none"] else list(asked or profile.methods or METHODS)


def summary(jobs, results: list[dict], seconds: float) -> str:
    """How far the command got: jobs finished, stopped with a checkpoint, and not started."""
    stopped = [r for r in results if r.get("stopped")]
    refused = [r for r in results if r.get("refused")]
    ran = {r["label"] for r in results}
    lines = [f"done in {seconds / 60:.1f} min: {len(results) - len(stopped) - len(refused)} of {len(jobs)} jobs "
             f"finished, {len(stopped)} stopped with a checkpoint, {len(refused)} refused, "
             f"{len(jobs) - len(results)} not started"]
    lines += [f"  stopped: {r['label']}: {r['stopped']}" for r in stopped]
    lines += [f"  refused: {r['label']}: {r['refused']}" for r in refused]
    lines += [f"  not started: {job.label}" for job in jobs if job.label not in ran]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

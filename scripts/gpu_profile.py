"""The ``gpu`` profile (all six sizes, both variants, two seeds, the convergence rule) in one
time-boxed window on a borrowed GPU, with what comes back packed into at most a few files.

    PYTHONPATH=lib python3 scripts/gpu_profile.py --out $OUT --minutes 9

Trains into a fresh cache under --scratch: the GRUs, then every analysis, as groups (run.py) on
--workers processes sharing the GPU.  At --minutes no group starts and the groups in flight
checkpoint and stop (run.run_group): the same command on the same --scratch continues them (leave
room before the window's own limit for the packing).  It writes, under --out:
``gpu_results.tar.gz`` (every minute and at the end: every finished entry's manifest: results and curves; and the weights of
entries small enough to fit, at most --weights-mib), ``gpu_log.txt``, and first ``gpu_bench.csv``
(bench.cuda_group_rows: a group of K against one model per process).  Unpack the tarball into
``data/`` to ship the results; entries without weights are read by the notebooks' gpu sections
(report's ``shipped_only``) and recomputed by anything that needs the model.

Rehearse on a CPU at tiny scale: ``--profile smoke --minutes 1 --workers 1``.
"""
import argparse
import io
import os
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path


class Tee(io.TextIOBase):
    """Print to the console and to the log that comes back."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)


PACKING = threading.Lock()  # the minute timer and the final packing must not write at once


def pack(scratch: Path, out: Path, weights_mib: float) -> tuple[int, int]:
    """All manifests, and the smallest weights first while they fit; written atomically."""
    with PACKING:
        return _pack(scratch, out, weights_mib)


def _pack(scratch: Path, out: Path, weights_mib: float) -> tuple[int, int]:
    manifests = sorted(scratch.glob("*/*/manifest.json"))
    weights = sorted((p.parent / "weights.pt" for p in manifests), key=lambda w: w.stat().st_size)
    budget, shipped = weights_mib * 2 ** 20, []
    for w in weights:
        if w.stat().st_size > budget:
            break
        budget -= w.stat().st_size
        shipped.append(w)
    tmp = out / "gpu_results.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for path in manifests + shipped:
            tar.add(path, arcname=str(path.relative_to(scratch)))
    os.replace(tmp, out / "gpu_results.tar.gz")
    return len(manifests), len(shipped)


def write_bench(path: Path, device, **sizes) -> None:
    """bench.cuda_group_rows on ``device`` (tests: the CPU, tiny sizes) into ``path``."""
    import pandas as pd
    from onion_gru.bench import cuda_group_rows
    pd.DataFrame(cuda_group_rows(device, **sizes)).to_csv(path, index=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--profile", default="gpu")
    p.add_argument("--minutes", type=float, default=9.0)
    p.add_argument("--workers", type=int, default=6, help="processes sharing the device")
    p.add_argument("--scratch", type=Path, default=Path("/tmp/onion_gru_gpu_data"))
    p.add_argument("--weights-mib", type=float, default=15.0)
    p.add_argument("--no-bench", action="store_true")
    args = p.parse_args()
    deadline = time.time() + 60 * args.minutes
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["ONION_GRU_DATA"] = str(args.scratch)  # before the workers start: they inherit it
    sys.stdout = sys.stderr = Tee(sys.__stdout__, open(args.out / "gpu_log.txt", "a", buffering=1))

    import torch
    from onion_gru.analysis import METHODS
    from onion_gru.cache import environment
    from onion_gru.jobs import missing_jobs
    from onion_gru.run import run_jobs
    from onion_gru.profiles import get_profile
    print(f"environment {environment()}; profile {args.profile}; deadline in {args.minutes} min")
    if not args.no_bench and torch.cuda.is_available():
        try:  # a failure here must not cost the profile run, but it is printed whole
            write_bench(args.out / "gpu_bench.csv", torch.device("cuda"))
        except Exception:  # noqa: BLE001
            traceback.print_exc()
    profile = get_profile(args.profile)
    start = time.time()

    def pack_every_minute():  # so that a window killed mid-run still returns what finished
        while True:
            time.sleep(60)
            pack(args.scratch, args.out, args.weights_mib)
    threading.Thread(target=pack_every_minute, daemon=True).start()
    methods = list(profile.methods or METHODS)
    grus, analyses = missing_jobs(profile, methods)
    results = run_jobs(grus + analyses, args.workers, deadline=deadline)
    print(f"{len(results)} of {len(grus) + len(analyses)} jobs in {(time.time() - start) / 60:.1f} min")
    manifests, weights = pack(args.scratch, args.out, args.weights_mib)
    print(f"packed {manifests} manifests, {weights} with weights")
    gru_left, analyses_left = missing_jobs(profile, methods)
    print(f"done in {(time.time() - start) / 60:.1f} min; left: {len(gru_left)} GRUs, {len(analyses_left)} analyses")
    return 0


if __name__ == "__main__":
    sys.exit(main())

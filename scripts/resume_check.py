"""A run killed half-way and run again: the same bits as a run never killed, and what the rerun costs.

    OMP_NUM_THREADS=1 PYTHONPATH=lib python3 scripts/resume_check.py [--size 64 --steps 3000]

Three runs of one GRU (the laptop profile's config at --size, autoregressive, seed 0, a fixed
budget of --steps, evaluated every 500), each in its own process into its own empty cache, one
thread: (1) uninterrupted; (2) the same, SIGKILLed once half of (1)'s wall time has passed (no clean
stop: it leaves only its periodic checkpoint, here every --every seconds); (3) the same command
again, which resumes from that checkpoint.  Writes figures/resume_check.csv: the wall times, the
step resumed from, and whether (3)'s weights and curve equal (1)'s.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
from dataclasses import replace
from onion_gru.profiles import Budget, get_profile
from onion_gru.train import RNNConfig, get_rnn
size, steps = int(sys.argv[1]), int(sys.argv[2])
config = RNNConfig.from_profile(get_profile("laptop"), size, "autoregressive", 0)
get_rnn(replace(config, budget=Budget.fixed(steps, 500)), device="cpu", eval_size=1000)
"""


def run(root: Path, size: int, steps: int, every: float, kill_after: float | None = None) -> float:
    env = {**os.environ, "ONION_GRU_DATA": str(root), "ONION_GRU_CHECKPOINT_SECONDS": str(every),
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "lib")}
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(size), str(steps)], env=env)
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.time() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=float, default=10.0, help="checkpoint interval, seconds")
    args = p.parse_args()
    import pandas as pd
    import torch
    from onion_gru import cache, checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        whole, broken = Path(tmp) / "whole", Path(tmp) / "broken"
        full = run(whole, args.size, args.steps, args.every)
        killed = run(broken, args.size, args.steps, args.every, kill_after=full / 2)
        (info,) = checkpoint.checkpoints(broken)
        rerun = run(broken, args.size, args.steps, args.every)
        (a,), (b,) = (list(root.glob("gru/*/")) for root in (whole, broken))
        wa, wb = (torch.load(d / "weights.pt", weights_only=True) for d in (a, b))
        ca, cb = ([(q["step"], q["accuracy"], q["loss"]) for q in cache.read_entry(d)[1]["metrics"]["curve"]] for d in (a, b))
        row = {"size": args.size, "steps": args.steps, "checkpoint_every_s": args.every, "full_s": round(full, 1),
               "killed_after_s": round(killed, 1), "resumed_from_step": info["step"], "rerun_s": round(rerun, 1),
               "rerun_over_full": round(rerun / full, 3), "same_weights": all(torch.equal(wa[k], wb[k]) for k in wa),
               "same_curve": ca == cb, "cpu": cache.cpu_model()}
    out = ROOT / "figures" / "resume_check.csv"
    pd.DataFrame([row]).to_csv(out, index=False)
    print(row, f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Do length-bucketed batches make a GRU learn faster per second, not just per step?

    PYTHONPATH=lib python scripts/batching_tradeoff.py [--size 48] [--steps 6000]

Trains the same GRU config twice, with the authors' random (padded) batches and with
train.LengthBucketSampler, and writes the validation curve of each (exact match against optimizer
steps and against seconds of training) to figures/batching_tradeoff.csv.  The README's "Speed"
section reports the outcome; run it on an otherwise idle machine, since it measures time.
"""
import argparse

import pandas as pd
import torch

from onion_gru.report import ROOT
from onion_gru.profiles import Budget
from onion_gru.train import GRUConfig, train_grus


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--variant", default="autoregressive")
    p.add_argument("--steps", type=int, default=6000)
    args = p.parse_args()
    torch.set_num_threads(2)
    config = GRUConfig(args.size, args.variant, seed=0, budget=Budget.fixed(args.steps, 1000, curve_size=5000))
    rows = []
    for batching in ("random", "length_buckets"):
        _, (metrics,) = train_grus([config], "cpu", eval_size=5000, batching=batching)
        rows += [{"batching": batching, **point} for point in metrics["curve"]]
        print(batching, [(r["step"], round(r["accuracy"], 3), r["seconds"]) for r in metrics["curve"]], flush=True)
    out = ROOT / "figures" / "batching_tradeoff.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    print(f"written to {out}")


if __name__ == "__main__":
    main()

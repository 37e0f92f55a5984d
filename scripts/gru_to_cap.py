"""Train GRUs for a fixed number of steps (no convergence rule), record their curves, and show where
the laptop rule, and any other patience, would have stopped them: a check of the rule itself.

    PYTHONPATH=lib python scripts/gru_to_cap.py --size 48 --variant no_input --seeds 0 1 --steps 40000

Writes figures/gru_to_cap_N<size>_<variant>.csv (one row per curve point) and prints each seed's
stopping step and accuracy under patience 4,000, 6,000 and 8,000.  Nothing goes into the cache.
About 9 minutes on one core for the N = 48 no-input pair to 40k steps (the check that set the laptop
GRU patience to 6,000: docs/profiles.md).
"""
import argparse
from dataclasses import replace

import pandas as pd
import torch

from onion_gru.profiles import CONVERGED_GRU, Budget
from onion_gru.profiles import ROOT
from onion_gru.train import RNNConfig, train_rnns


def stop(budget: Budget, curve: list[dict]) -> dict:
    return curve[budget.stop_index([p["step"] for p in curve], [p["accuracy"] for p in curve])]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--variant", default="no_input")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=40_000)
    args = p.parse_args()
    torch.set_num_threads(1)
    budget = Budget.fixed(args.steps, CONVERGED_GRU.eval_every, CONVERGED_GRU.curve_size)
    configs = [RNNConfig(args.size, args.variant, seed, budget) for seed in args.seeds]
    _, metrics = train_rnns(configs, torch.device("cpu"))
    rows = [{"size": args.size, "variant": args.variant, "seed": c.seed, **point}
            for c, m in zip(configs, metrics) for point in m["curve"]]
    out = ROOT / "figures" / f"gru_to_cap_N{args.size}_{args.variant}.csv"
    pd.DataFrame(rows).to_csv(out, index=False, float_format="%.4f")
    for c, m in zip(configs, metrics):
        rules = {patience: stop(replace(CONVERGED_GRU, patience=patience), m["curve"]) for patience in (4_000, 6_000, 8_000)}
        print(f"seed {c.seed}: {args.steps:,} steps -> validation accuracy {m['valid']['accuracy']:.3f}; the rule "
              + "; ".join(f"patience {k:,} stops at {v['step']:,} ({v['accuracy']:.3f})" for k, v in rules.items()))
    print(f"curves: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Notebook 12's claim 4 on one CPU: does a dynamics run pass through the GRU the rule keeps?

    OMP_NUM_THREADS=1 PYTHONPATH=lib python scripts/same_cpu_replay.py [--size 128 --variant no_input]

The shipped GRUs were trained on another CPU than the dynamics runs, and their bits part within
the first thousands of steps (figures/12_dynamics_same_run.csv).  This trains the shipped GRUs'
config again (the five_seeds profile: the convergence rule, seeds 0 and 1 as one group, one thread,
as they were trained) on this CPU, and compares its curve point by point with the dynamics run of
the same size, variant and seed, up to where the rule stops the replay.  Equal loss and accuracy at
every point, and the rule stopping both curves at the same step, say that the run's training is the
shipped config's training here, so that only the CPU separates the run from the shipped GRU.  The
validation accuracy of the replay (5,000 sequences) is compared with the shipped GRU's to 4 decimals.
Writes figures/12_same_cpu_replay.csv (one row per seed, each side's CPU).  Nothing goes into the
cache.  About 10 minutes on one core for the default pair.
"""
import argparse
import re

import pandas as pd
import torch

from onion_gru import results
from onion_gru.cache import cpu_model
from onion_gru.profiles import ROOT, get_profile
from onion_gru.train import RNNConfig, train_rnns


def cpu(model: str) -> str:
    """A manifest's CPU as vendor, family and model ("GenuineIntel family 6 model 167"): what decides the bits."""
    found = re.search(r"\((\w+ family \d+ model \d+)", model)
    return found.group(1) if found else model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128, help="one of the dynamics profile's sizes (64, 128)")
    p.add_argument("--variant", default="no_input")
    args = p.parse_args()
    torch.set_num_threads(1)  # the shipped GRUs' (their manifests' environment)
    shipped, run = get_profile("five_seeds"), get_profile("dynamics")
    seeds = run.seeds
    configs = [RNNConfig.from_profile(shipped, args.size, args.variant, seed) for seed in seeds]
    _, metrics = train_rnns(configs, torch.device("cpu"))
    theirs = results.rnn_results(shipped.check([args.size], [args.variant], seeds), partial=True)
    runs = results.rnn_curves(run.check([args.size], [args.variant], seeds), partial=True)
    grus = results.rnn_results(run.check([args.size], [args.variant], seeds), partial=True)
    here = cpu_model()
    rows = []
    for seed, m in zip(seeds, metrics):
        agree = results.curve_agreement(pd.DataFrame(m["curve"]), runs[runs.seed == seed], shipped.gru)
        gru = theirs[theirs.seed == seed].iloc[0]
        rows.append({"size": args.size, "variant": args.variant, "seed": seed, "replay_steps": m["steps"],
                     "points": agree["points"], "first_difference": agree["first_difference"],
                     "max_loss_difference": agree["max_loss_difference"],
                     "run_stop_by_rule": agree["stop_by_rule"],  # the shipped rule, replayed on the run
                     "replay_accuracy": round(m["valid"]["accuracy"], 4), "shipped_steps": int(gru.steps),
                     "shipped_accuracy": round(float(gru.accuracy), 4), "replay_cpu": cpu(here),
                     "run_cpu": cpu(grus[grus.seed == seed].cpu.iloc[0]), "shipped_cpu": cpu(gru.cpu)})
    table = pd.DataFrame(rows)
    out = ROOT / "figures" / "12_same_cpu_replay.csv"
    table.to_csv(out, index=False)
    print(table.to_string(index=False))
    print(f"this CPU: {here}\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

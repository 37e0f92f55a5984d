"""A time-boxed slice of the paper profile for a borrowed GPU: large GRUs and their linear unigram
intervention, the claim a 2-core CPU cannot check.

    PYTHONPATH=lib python scripts/gpu_slice.py --size 1024 --gru-seconds 200 --analysis-seconds 200 --out DIR

Step counts are the paper's (40k GRU, 60k analysis) capped by a wall-time budget measured on the
spot; the budget-limited counts are recorded next to every result, so nothing pretends to be the full
protocol.  Results go to DIR/slice_N<size>.json (full manifests) and DIR/slice_N<size>.csv.
"""
import argparse
import csv
import json
import time
from dataclasses import asdict
from pathlib import Path


from onion_gru import cache
from onion_gru.analysis import AnalysisConfig, train_methods
from onion_gru.bench import time_steps, training_step
from onion_gru.model import ModelConfig, RepeatRNN
from onion_gru.profiles import Budget
from onion_gru.train import RNNConfig, rnn_hash, train_rnns
from onion_gru.loop import default_device
from onion_gru import data


def seconds_per_gru_step(size: int, device) -> float:
    tokens, lengths = data.load("train")
    step = training_step(RepeatRNN(ModelConfig(size)).to(device), tokens, lengths, device)
    return time_steps(step, device, repeats=1, n=40, warmup=10)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--variant", default="autoregressive")
    p.add_argument("--gru-seconds", type=float, default=200)
    p.add_argument("--analysis-seconds", type=float, default=200)
    p.add_argument("--methods", nargs="+", default=["linear_unigram"])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    device = default_device()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"device": cache.environment(), "size": args.size, "variant": args.variant}
    t_step = seconds_per_gru_step(args.size, device)
    gru_steps = max(int(min(40_000, args.gru_seconds / t_step) // 500 * 500), 500)
    config = RNNConfig(args.size, args.variant, 0, Budget.fixed(gru_steps, max(gru_steps // 10, 1)))
    model, (metrics,) = train_rnns([config], device)
    model.eval().requires_grad_(False)
    report["gru"] = {"config": asdict(config), "metrics": metrics, "measured_seconds_per_step": t_step}
    rows = [{"size": args.size, "variant": args.variant, "method": "gru", "steps": gru_steps,
             "accuracy": metrics["valid"]["accuracy"], "floor": "", "seconds_per_step": metrics["seconds_per_step"]}]
    (args.out / f"slice_N{args.size}.json").write_text(json.dumps(report, indent=1))
    print(f"GRU N={args.size}: {gru_steps} steps, valid accuracy {metrics['valid']['accuracy']:.4f}", flush=True)
    model_key = rnn_hash(config)
    for method in args.methods:
        probe = AnalysisConfig(method, model_key, Budget.fixed(20), eval_size=50)
        start = time.time()
        train_methods(model, [probe])  # timing run (includes one evaluation)
        per_step = (time.time() - start) / 20
        steps = int(min(60_000, args.analysis_seconds / per_step) // 250 * 250)
        a_config = AnalysisConfig(method, model_key, Budget.fixed(max(steps, 250), max(steps // 20, 1)))
        module, (a_metrics,) = train_methods(model, [a_config])
        first = next(k for k in a_metrics if isinstance(a_metrics[k], dict))
        report[method] = {"config": asdict(a_config), "metrics": a_metrics}
        rows.append({"size": args.size, "variant": args.variant, "method": method, "steps": a_config.budget.max_steps,
                     "accuracy": a_metrics["accuracy"], "floor": a_metrics[first].get("floor", ""),
                     "seconds_per_step": a_metrics["seconds_per_step"]})
        print(f"{method} N={args.size}: {a_config.budget.max_steps} steps, accuracy {a_metrics['accuracy']:.4f}", flush=True)
        (args.out / f"slice_N{args.size}.json").write_text(json.dumps(report, indent=1))
        with open(args.out / f"slice_N{args.size}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()

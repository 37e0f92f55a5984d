"""Which CPU code paths decide the bits of a trained GRU, and what pinning them costs.

    PYTHONPATH=lib python scripts/bitwise_study.py [--steps 300] [--out figures/bitwise_study.csv]

Trains the same N = 64 autoregressive GRU (seed 0, one thread, 100k training sequences) and a linear
unigram intervention on it (100 steps) in a fresh process under each setting below, and times a GRU
training step at N = 64 and 128.  A setting that changes the weights against the
default shows a code path that the default chooses per machine: MKL picks its GEMM kernels (and
their blocking, from the cache sizes it detects) per CPU unless ``MKL_CBWR`` pins a branch; ATen
picks its vectorised kernels per CPU capability unless ``ATEN_CPU_CAPABILITY`` pins one; oneDNN
likewise under ``ONEDNN_MAX_CPU_ISA``.  Same bits on another machine need every path that is
active here pinned to one that machine also runs.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = {
    "default": {},
    "default, again": {},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2"},
    "MKL_CBWR=AUTO": {"MKL_CBWR": "AUTO"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def child(steps: int, weights_path: str) -> dict:
    import torch
    torch.set_num_threads(1)
    from onion_gru import data
    from onion_gru.analysis import AnalysisConfig, train_methods
    from onion_gru.bench import time_steps, training_step
    from onion_gru.model import ModelConfig, RepeatRNN
    from onion_gru.profiles import Budget
    from onion_gru.train import RNNConfig, train_rnns
    config = RNNConfig(64, "autoregressive", 0, Budget.fixed(steps, curve_size=200), train_size=100_000)
    model, (metrics,) = train_rnns([config], "cpu", eval_size=200)
    model.eval().requires_grad_(False)
    state = model.member_state(0)
    # and a linear unigram intervention on it (its rotation goes through other MKL routines)
    method = AnalysisConfig("linear_unigram", "study", Budget.fixed(100, curve_size=100), train_size=100_000, eval_size=100)
    module, _ = train_methods(model, [method])
    state.update({f"intervention.{k}": v for k, v in module.state_dict().items()})
    torch.save(state, weights_path)
    digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in state.values())).hexdigest()[:16]
    tokens, lengths = data.load("train", size=100_000)
    ms = {f"ms_step_N{n}": 1e3 * time_steps(training_step(RepeatRNN(ModelConfig(n)), tokens, lengths, torch.device("cpu")), torch.device("cpu"))
          for n in (64, 128)}
    return {"weights_sha": digest, "capability": torch.backends.cpu.get_cpu_capability(),
            "accuracy": metrics["valid"]["accuracy"], **ms}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", type=Path, default=Path("figures/bitwise_study.csv"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.steps, args.child)))
        return 0
    import pandas as pd
    import torch
    rows, tmp = [], Path(os.environ.get("TMPDIR", "/tmp"))
    for i, (name, env) in enumerate(SETTINGS.items()):
        weights = tmp / f"bitwise_{i}.pt"
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", str(weights)],
                             env={**os.environ, "OMP_NUM_THREADS": "1", **env}, capture_output=True, text=True, check=True)
        row = {"setting": name, **json.loads(out.stdout.strip().splitlines()[-1])}
        base = torch.load(tmp / "bitwise_0.pt")
        other = torch.load(weights)
        row["max_abs_dw_gru"] = max((base[k] - other[k]).abs().max().item() for k in base if "intervention" not in k)
        row["max_abs_dw_intervention"] = max((base[k] - other[k]).abs().max().item() for k in base if "intervention" in k)
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    table["cost_N64"] = table["ms_step_N64"] / table["ms_step_N64"].iloc[0]
    table["cost_N128"] = table["ms_step_N128"] / table["ms_step_N128"].iloc[0]
    table.to_csv(args.out, index=False, float_format="%.4g")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

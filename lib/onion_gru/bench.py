"""``make bench``: our training step against a direct ``torch.nn.GRU`` reference, every stage-2
method's step, the large sizes' GRU and linear unigram steps with each orthogonal map, the achieved GFLOP/s against a large matmul, the train stage run as groups against
groups of one, a stage-2 group, and the optimizer-step count of the paper profile against the
authors'.  On CUDA also a group of K models in one process against one model per process, and the
paper profile's GPU-hours projected from those rates.  Medians over repeats after a warm-up (the
training steps timed in turns); writes figures/bench.csv, whose ``speedup`` column is against the
nn.GRU reference step (step rows), against matrix_exp (the orthogonal-map rows), against groups of one (the "group" rows of the train stage and
stage 2), or against one model per process (CUDA group rows).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace

import pandas as pd
import torch
import torch.nn as nn

from . import data
from .analysis import METHODS, AnalysisConfig, MethodTrainee
from .cells import CELLS
from .run import MAX_GROUP
from .model import SOS, ModelConfig, RepeatRNN, sequence_loss
from .profiles import PROFILES, Budget
from .profiles import ROOT
from .train import RNNTrainee
from .loop import BatchSampler, batch, optimizer, optimizer_step, sample


class DirectSeq2Seq(nn.Module):
    """The reference: the authors' model written the most direct way (packed encoder, nn.GRU)."""

    def __init__(self, H: int):
        super().__init__()
        self.embedding, self.rnn, self.fc = nn.Embedding(31, H), nn.GRU(H, H), nn.Linear(H, 30)

    def forward(self, x, lengths):  # x [B, T] batch-first, converted to the authors' time-major
        x = x.T
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(x), lengths.cpu(), enforce_sorted=False)
        _, h = self.rnn(packed)
        dec_in = torch.cat([torch.full_like(x[:1], SOS), x[:-1]])
        out, _ = self.rnn(self.embedding(dec_in), h)
        return self.fc(out).transpose(0, 1)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step, device, repeats: int = 5, n: int = 10, warmup: int = 5) -> float:
    """Median seconds per call of ``step``: ``repeats`` timings of ``n`` calls after a warm-up."""
    return time_interleaved([step], device, repeats, n, warmup)[0]


def time_interleaved(steps, device, repeats: int = 15, n: int = 5, warmup: int = 5) -> list[float]:
    """Median seconds per call of each of ``steps``, timed in turns (n calls of each, ``repeats``
    rounds), so that a slow spell of a shared machine hits all of them alike."""
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, out in zip(steps, times):
            _sync(device)
            start = time.perf_counter()
            for _ in range(n):
                step()
            _sync(device)
            out.append((time.perf_counter() - start) / n)
    return [statistics.median(t) for t in times]


def training_step(model, tokens, lengths, device):
    """One optimizer step on 256 sequences of the training set per model, cycling through 8 prepared
    batches.  Our model (a group of K) takes the step of ``loop.fit`` (RNNTrainee.loss,
    loop.optimizer_step), each member its own batches; the reference the plain loop."""
    K = len(model.configs) if isinstance(model, RepeatRNN) else 1
    samplers = [BatchSampler(len(tokens), 256, seed) for seed in range(K)]
    batches = [batch(tokens, lengths, sample(samplers), device) for _ in range(8)]
    counter = iter(range(10 ** 9))
    if isinstance(model, RepeatRNN):
        opt = optimizer(model, lr=1e-3, weight_decay=0.1)
        trainee = RNNTrainee(model)
        return lambda: optimizer_step(opt, trainee.loss(*batches[next(counter) % len(batches)]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    def step():
        x, l = (v[0] for v in batches[next(counter) % len(batches)])
        loss = sequence_loss(model(x, l)[None], x[None], l[None])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def gru_flops(H: int, token_steps: float) -> float:
    """Forward + backward of a GRU layer: 3 x 2 x 6H^2 per token step (embedding = H)."""
    return 36 * H * H * token_steps


def matmul_gflops(device, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n ** 3 / time_steps(lambda: a @ b, device, n=3) / 1e9


def step_counts() -> dict:
    """Optimizer steps of the paper protocol: the authors' 480 runs each retrain a GRU (40k) before
    their 60k analysis steps; we train 60 GRUs once and run the 8 analyses on each."""
    p = PROFILES["paper"]
    grus = len(p.sizes) * len(p.variants) * len(p.seeds)
    authors = 480 * (p.gru.max_steps + p.analysis.max_steps)
    ours = grus * p.gru.max_steps + grus * len(METHODS) * p.analysis.max_steps
    return {"authors_steps": authors, "our_steps": ours, "ratio": ours / authors, "grus": grus}


def run(devices=None, sizes=(48, 64, 128, 256), large_sizes=(512, 1024)) -> pd.DataFrame:
    devices = devices or [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    tokens, lengths = data.load("train", size=50_000)
    mean_tokens = 2 * lengths.float().mean().item() * 256  # reading + generation, per batch
    rows = []
    for device in devices:
        peak = matmul_gflops(device)
        rows.append({"device": device.type, "what": "matmul 2048^3", "size": 2048, "ms": float("nan"), "gflops": peak})
        for H in sizes:
            torch.manual_seed(0)
            ours, ref = time_interleaved([
                training_step(RepeatRNN(ModelConfig(H)).to(device), tokens, lengths, device),
                training_step(DirectSeq2Seq(H).to(device), tokens, lengths, device)], device)
            gflops = gru_flops(H, mean_tokens) / ours / 1e9
            rows.append({"device": device.type, "what": "GRU train step (ours)", "size": H, "ms": ours * 1e3,
                         "gflops": gflops, "pct_of_matmul": 100 * gflops / peak, "speedup": ref / ours})
            rows.append({"device": device.type, "what": "GRU train step (nn.GRU reference)", "size": H, "ms": ref * 1e3})
        for H in (64, 128):  # the cells of notebook 07, one model each, timed in turns
            times = time_interleaved([training_step(RepeatRNN(ModelConfig(H, cell=cell)).to(device), tokens, lengths,
                                                    device) for cell in CELLS], device)
            rows += [{"device": device.type, "what": f"train step, {cell} cell", "size": H, "ms": t * 1e3}
                     for cell, t in zip(CELLS, times)]
        for method in METHODS:
            rows.append({"device": device.type, "what": f"stage-2 step: {method}", "size": 64,
                         "ms": stage2_step_seconds(method, 64, 1, device) * 1e3})
        # a group of stage-2 models on a group of frozen GRUs, per model-step, against groups of one
        k = MAX_GROUP[device.type]
        one, group = (stage2_step_seconds("onion_unigram", 64, n, device) for n in (1, k))
        rows.append({"device": device.type, "what": f"stage-2 group step: onion_unigram, group of {k} "
                     "(ms per model-step)", "size": 64, "ms": group / k * 1e3, "speedup": one * k / group})
        one_more = (1,) if device.type == "cpu" and torch.get_num_threads() > 1 else ()
        rows += large_rows(device, tokens, lengths, large_sizes, threads=(None, *one_more))
        if device.type == "cuda":
            rows += cuda_group_rows(device, tokens, lengths)
    return pd.DataFrame(rows)


def large_rows(device, tokens, lengths, sizes=(512, 1024), threads=(None,)) -> list[dict]:
    """The steps that decide the large profile's cost: the GRU's in fp32 and with bf16 products
    (``speedup`` against fp32), and the linear unigram intervention's with each orthogonal map
    (``speedup`` against matrix_exp), one model each, timed in few repeats (a step of N = 1024 takes
    seconds).  Timed once per entry of ``threads`` (None: the current count); the rows of every entry
    after the first end in ", <n> thread(s)": `make bench` times the CPU again with one thread, the
    layout of the campaign's workers, since bf16's gain depends on the thread count."""
    from .interventions import ORTHOGONAL_MAPS
    quick = {"repeats": 3, "n": 2, "warmup": 1}
    current = torch.get_num_threads()
    rows = []
    try:
        for i, n in enumerate(threads):
            torch.set_num_threads(n := n or current)
            suffix = f", {n} thread{'s' if n > 1 else ''}" if i else ""
            for H in sizes:
                fp32, bf16 = (time_steps(training_step(RepeatRNN(ModelConfig(H, precision=p)).to(device), tokens,
                                                       lengths, device), device, **quick) for p in ("fp32", "bf16"))
                rows.append({"device": device.type, "what": f"GRU train step (ours), fp32{suffix}", "size": H,
                             "ms": fp32 * 1e3})
                rows.append({"device": device.type, "what": f"GRU train step (ours), bf16 products{suffix}",
                             "size": H, "ms": bf16 * 1e3, "speedup": fp32 / bf16})
                times = {m: stage2_step_seconds("linear_unigram", H, 1, device, m, **quick) for m in ORTHOGONAL_MAPS}
                rows += [{"device": device.type, "what": f"stage-2 step: linear_unigram, {m}{suffix}", "size": H,
                          "ms": t * 1e3, "speedup": times["matrix_exp"] / t} for m, t in times.items()]
    finally:  # the caller's thread count, whatever happened
        torch.set_num_threads(current)
    return rows


def stage2_step_seconds(method: str, size: int, k: int, device, orthogonal_map: str = "matrix_exp", **timing) -> float:
    """Seconds per step of ``method`` as a group of k on k frozen GRUs (each member its own batches),
    the step of ``loop.fit`` (MethodTrainee.loss, loop.optimizer_step)."""
    gru = RepeatRNN([ModelConfig(size)] * k).to(device).requires_grad_(False)
    configs = [AnalysisConfig(method, "bench", Budget.fixed(1), seed=seed, orthogonal_map=orthogonal_map)
               for seed in range(k)]
    trainee = MethodTrainee(gru, configs)
    opt = optimizer(trainee.module, lr=1e-3, weight_decay=0.1)
    t, l = data.load(trainee.module.train_set, size=20_000)
    samplers = [BatchSampler(len(t), 256, seed) for seed in range(k)]
    gru.train()
    return time_steps(lambda: optimizer_step(opt, trainee.loss(*batch(t, l, sample(samplers), device))), device,
                      **timing)


def cuda_group_rows(device, tokens=None, lengths=None, sizes=(64, 256, 1024), k: int = 16) -> list[dict]:
    """A group of k GRUs in one process against one GRU per process (timed alone: a lower bound on
    what several processes sharing the card get), per model-step; and the paper profile's GPU-hours
    at the group rates.  ``tokens, lengths``: the training set (default: its first 50,000)."""
    if tokens is None:
        tokens, lengths = data.load("train", size=50_000)
    device = torch.device(device)
    rows, rates = [], {}
    for H in sizes:
        one = time_steps(training_step(RepeatRNN(ModelConfig(H)).to(device), tokens, lengths, device), device)
        group = time_steps(training_step(RepeatRNN([ModelConfig(H)] * k).to(device), tokens, lengths, device), device)
        rates[H] = k / group
        rows.append({"device": device.type, "what": f"GRU train step, group of {k} (model-steps/s)", "size": H,
                     "ms": group * 1e3, "steps_per_s": k / group, "speedup": one * k / group})
        rows.append({"device": device.type, "what": "GRU train step, one model per process (model-steps/s)",
                     "size": H, "ms": one * 1e3, "steps_per_s": 1 / one})
    counts = step_counts()
    per_size = counts["our_steps"] / len(PROFILES["paper"].sizes)
    # sizes not timed take the rate of the next larger timed size (a larger GRU is not faster)
    rate = lambda n: rates[min((s for s in rates if s >= n), default=max(rates))]
    hours = sum(per_size / rate(n) for n in PROFILES["paper"].sizes) / 3600
    rows.append({"device": device.type, "what": "paper profile, projected GPU-hours at the group rates", "size": 0,
                 "value": hours})
    return rows


def train_stage_rate(size: int, workers: int, max_group: int, steps: int = 1500, models: int = 4) -> float:
    """Model-steps per second of a whole ``train`` stage: ``models`` GRUs of ``steps`` steps (both
    variants, with their evaluation) into an empty cache, as ``workers`` processes x cores/workers
    threads running groups of at most ``max_group``."""
    from .jobs import Job
    from .run import run_jobs
    profile = replace(PROFILES["laptop"], name="bench", sizes=(size,), seeds=tuple(range(models // 2)),
                      gru=Budget.fixed(steps, curve_size=1000), eval_size=1000)
    jobs = [Job(profile, *cell) for cell in profile.grus()]
    before = os.environ.get("ONION_GRU_DATA")
    try:
        with tempfile.TemporaryDirectory() as root:
            os.environ["ONION_GRU_DATA"] = root  # an empty cache: every job trains
            start = time.perf_counter()
            run_jobs(jobs, workers, max_group=max_group)
            return len(jobs) * steps / (time.perf_counter() - start)
    finally:
        if before is None:
            del os.environ["ONION_GRU_DATA"]
        else:
            os.environ["ONION_GRU_DATA"] = before


# (workers, largest group) of the train-stage rows; the first is the baseline: one model per job
STAGE_LAYOUTS = ((2, 1), (2, 2), (1, 4))


def train_stage_rows(sizes=(48, 64, 128), steps: int = 1500) -> list[dict]:
    rows = []
    for size in sizes:
        rates = [train_stage_rate(size, workers, group, steps) for workers, group in STAGE_LAYOUTS]
        for (workers, group), rate in zip(STAGE_LAYOUTS, rates):
            threads = (os.cpu_count() or 1) // workers
            what = "groups of one" if group == 1 else f"group of {group}"
            rows.append({"device": "cpu", "size": size, "steps_per_s": rate, "speedup": rate / rates[0],
                         "what": f"train stage, {what}, {workers} workers x {threads} threads (model-steps/s)"})
    return rows


def main() -> int:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    table = run()
    if (os.cpu_count() or 1) >= 2:
        table = pd.concat([table, pd.DataFrame(train_stage_rows())])
    counts = step_counts()
    out = ROOT / "figures" / "bench.csv"
    out.parent.mkdir(exist_ok=True)
    table.to_csv(out, index=False, float_format="%.3f")
    with pd.option_context("display.width", 140, "display.max_columns", 10):
        print(table.round(3).to_string(index=False))
    print(f"\npaper profile: {counts['our_steps']:,} optimizer steps ({counts['grus']} GRUs trained once) against "
          f"the authors' {counts['authors_steps']:,} (480 runs x 100k): {counts['ratio']:.2f} of theirs")
    print(f"written to {out}")
    return 0

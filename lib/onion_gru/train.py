"""Training and evaluation of the repeat GRU, and the cached `get_gru` that every analysis uses."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass

import torch

from . import cache, data
from .layers import from_members
from .model import ModelConfig, RepeatGRU, exact_match, sequence_loss
from .profiles import Budget, Profile


@dataclass(frozen=True)
class GRUConfig:
    """Everything that determines a trained GRU; stored in its manifest and hashed into its key."""
    hidden_size: int
    variant: str
    seed: int
    budget: Budget
    train_size: int = 1_000_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1  # AdamW, on all parameters, as the authors
    cell: str = "gru"  # "lstm" or "elman" for the cell comparison (cells.py)

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(self.hidden_size, self.variant, self.cell)

    @property
    def label(self) -> str:
        return ("" if self.cell == "gru" else f"{self.cell}-") + f"N{self.hidden_size}-{self.variant}-s{self.seed}"

    @classmethod
    def from_profile(cls, profile: Profile, hidden_size: int, variant: str, seed: int) -> "GRUConfig":
        return cls(hidden_size, variant, seed, profile.gru, profile.train_size, profile.batch_size, cell=profile.cell)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class BatchSampler:
    """Endless random batches of indices: a fresh permutation each epoch from a seeded generator."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.pos = torch.randperm(n, generator=self.generator), 0

    def __next__(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.generator), 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


class LengthBucketSampler:
    """Endless batches in which every sequence has the same length, so that a batch needs no padding.
    Each epoch is a fresh seeded permutation, grouped by length and cut into full batches, served in
    random order; the leftovers of every length are pooled into mixed-length batches, so an epoch
    visits every sequence once but the last partial batch.

    Not used by any profile: a GRU learns less per step from same-length batches, and since the CPU
    GRU (fastgru.py) skips padding anyway, their steps are at most 1.05x faster (``make bench``;
    README, "Speed")."""

    def __init__(self, lengths: torch.Tensor, batch_size: int, seed: int):
        self.lengths, self.batch_size = lengths, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.batches: list[torch.Tensor] = []

    def _epoch(self) -> list[torch.Tensor]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        full, leftover = [], []
        for L in self.lengths.unique().tolist():
            idx = order[self.lengths[order] == L]
            cut = len(idx) - len(idx) % self.batch_size
            full += list(idx[:cut].split(self.batch_size))
            leftover.append(idx[cut:])
        rest = torch.cat(leftover)
        rest = rest[torch.randperm(len(rest), generator=self.generator)]
        full += list(rest[:len(rest) - len(rest) % self.batch_size].split(self.batch_size))
        return [full[i] for i in torch.randperm(len(full), generator=self.generator).tolist()]

    def __next__(self) -> torch.Tensor:
        if not self.batches:
            self.batches = self._epoch()[::-1]
        return self.batches.pop()


SAMPLERS = {"random": lambda lengths, bs, seed: BatchSampler(len(lengths), bs, seed),
            "length_buckets": LengthBucketSampler}


def optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW on all of ``model``'s parameters (GRUs and methods alike, as the authors)."""
    # fused: one kernel for the whole update instead of a Python loop over parameters (equal to the
    # default implementation up to float rounding).  AdamW is elementwise, so a group's members take
    # the steps they would alone.
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def training_step(model: RepeatGRU, opt: torch.optim.Optimizer, x: torch.Tensor, l: torch.Tensor,
                  tokens_per_batch: float | None = None) -> torch.Tensor:
    """One step of every member on its own batch (x [K, B, T], l [K, B]); returns the losses [K]."""
    loss = sequence_loss(model(x, l), x, l, tokens_per_batch)
    opt.zero_grad(set_to_none=True)
    loss.sum().backward()
    opt.step()
    return loss.detach()


def batch(tokens: torch.Tensor, lengths: torch.Tensor, idx: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``idx [K, B]`` (one row of indices per member) trimmed to the longest sequence, as long
    tensors ``[K, B, T]`` and ``[K, B]`` on ``device``."""
    l = lengths[idx]
    return tokens[idx, :int(l.max())].long().to(device), l.long().to(device)


def sample(samplers) -> torch.Tensor:
    """The next batch of indices of every member's own sampler, [K, B]."""
    return torch.stack([next(s) for s in samplers])


@torch.inference_mode()
def evaluate(model: RepeatGRU, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 1024) -> list[dict]:
    """Per member, on the same set: sequence exact match with teacher forcing (the authors' metric),
    free-running greedy exact match, and teacher-forced accuracy by length."""
    was_training = model.training
    model.eval()
    K, tf, greedy = len(model.configs), [], []
    for start in range(0, len(tokens), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(tokens))).expand(K, -1)
        x, l = batch(tokens, lengths, idx, model.device)
        h = model.encode(x, l)
        tf.append(exact_match(model.decode(h, x, lengths=l).argmax(-1), x, l).cpu())
        greedy.append(exact_match(model.generate(h, x.shape[2]), x, l).cpu())
    model.train(was_training)
    tf, greedy = torch.cat(tf, 1), torch.cat(greedy, 1)
    return [summarize(tf[k], lengths, greedy[k]) for k in range(K)]


def summarize(correct: torch.Tensor, lengths: torch.Tensor, greedy: torch.Tensor | None = None) -> dict:
    out = {"accuracy": correct.float().mean().item(), "n": len(correct),
           "by_length": {int(L): correct[lengths == L].float().mean().item() for L in lengths.unique()}}
    if greedy is not None:
        out["greedy_accuracy"] = greedy.float().mean().item()
    return out


class Schedule:
    """Each member's curve and stopping step under one budget (profiles.Budget).  A group trains on
    until its last member stops; a member that stopped earlier keeps the state it had then (its later
    steps are thrown away), so its result is the one it would have alone."""

    def __init__(self, budget: Budget, members: int):
        self.budget = budget
        self.curves: list[list[dict]] = [[] for _ in range(members)]
        self.stopped: list[int | None] = [None] * members
        self.flattened: list[bool | None] = [None] * members  # stopped by the rule, not by the cap
        self.states: list[dict | None] = [None] * members

    def record(self, step: int, points: list[dict], state_of) -> bool:
        """Add each running member's point (with "accuracy") at ``step``; a member whose curve has
        converged stops, its state ``state_of(k)`` kept.  True when every member has stopped."""
        for k, point in enumerate(points):
            if self.stopped[k] is not None:
                continue
            self.curves[k].append({"step": step, **point})
            steps, accuracies = [p["step"] for p in self.curves[k]], [p["accuracy"] for p in self.curves[k]]
            if self.budget.stops(steps, accuracies):
                self.stopped[k], self.states[k] = step, state_of(k)
                self.flattened[k] = self.budget.flattened(steps, accuracies)
        return all(s is not None for s in self.stopped)


def progress_enabled() -> bool:
    """A live progress bar on terminals only: silent in notebooks, logs and CI."""
    quiet = os.environ.get("CI") or os.environ.get("ONION_GRU_QUIET") or "JPY_PARENT_PID" in os.environ
    return sys.stderr.isatty() and not quiet


def check_group(configs: list, varying: tuple[str, ...]) -> None:
    """The members of a group may differ only in the fields ``varying`` (a group runs one schedule)."""
    shared = [{k: v for k, v in asdict(c).items() if k not in varying} for c in configs]
    if any(s != shared[0] for s in shared):
        raise ValueError(f"a group's configs may differ only in {varying}: {shared}")


def train_grus(configs: list[GRUConfig], device=None, eval_size: int | None = None,
               batching: str = "random") -> tuple[RepeatGRU, list[dict]]:
    """Train a group of GRUs from scratch, each from its own seed's initialisation and batch order.
    Each member stops by the budget's rule (``Schedule``).  Returns the group, each member as it was
    when it stopped, and each member's metrics: the final validation result, the curve, the steps run.
    ``batching="length_buckets"`` is for the speed experiment only (see LengthBucketSampler)."""
    if batching not in SAMPLERS:
        raise ValueError(f"unknown batching {batching!r}; choose from {sorted(SAMPLERS)}")
    check_group(configs, ("variant", "seed"))
    config, K = configs[0], len(configs)
    device = device or default_device()
    model = from_members(lambda members: RepeatGRU([configs[k].model_config for k in members]),
                         [c.seed for c in configs]).to(device)
    opt = optimizer(model, config.lr, config.weight_decay)
    tokens, lengths = data.load("train", size=config.train_size)
    v_tokens, v_lengths = data.load("valid")
    v_tokens, v_lengths = v_tokens[:eval_size], v_lengths[:eval_size]
    samplers = [SAMPLERS[batching](lengths, config.batch_size, c.seed) for c in configs]
    # A bucket's token mean would weigh each length by its number of sequences rather than tokens;
    # dividing the token sum by the expected token count keeps the expected gradient of random batches.
    norm = None if batching == "random" else config.batch_size * lengths.float().mean().item()
    schedule, start, show = Schedule(config.budget, K), time.time(), progress_enabled()
    curve_set = v_tokens[:config.budget.curve_size], v_lengths[:config.budget.curve_size]
    names = "+".join(c.label for c in configs)
    for step in range(1, config.budget.max_steps + 1):
        loss = training_step(model, opt, *batch(tokens, lengths, sample(samplers), device), norm)
        if config.budget.evaluates(step):
            results, seconds = evaluate(model, *curve_set), round(time.time() - start, 2)
            points = [{"loss": l, "accuracy": r["accuracy"], "seconds": seconds} for r, l in zip(results, loss.tolist())]
            done = schedule.record(step, points, model.member_state)
            if show:
                accuracy = " ".join(f"{r['accuracy']:.3f}" for r in results)
                print(f"\r{names}: step {step} acc {accuracy}", end="", file=sys.stderr, flush=True)
            if done:
                break
    if show:
        print(file=sys.stderr)
    seconds = (time.time() - start) / step
    model.load_members(schedule.states)
    final = evaluate(model, v_tokens, v_lengths)
    longer = {name: [r["accuracy"] for r in evaluate(model, *data.load(name))]
              for name in ("valid_longer_1", "valid_longer_2", "valid_longer_1_norepeat")}
    return model, [{"valid": final[k], "longer": {name: v[k] for name, v in longer.items()},
                    "curve": schedule.curves[k], "steps": schedule.stopped[k], "flattened": schedule.flattened[k],
                    "seconds_per_step": seconds, "group_size": K} for k in range(K)]


def gru_entry(config: GRUConfig) -> tuple[str, dict]:
    """The cache label and config of a trained GRU."""
    return config.label, asdict(config)


def gru_hash(config: GRUConfig) -> str:
    """The cache key of a trained GRU: how an analysis names the model it studies."""
    return cache.config_hash(gru_entry(config)[1])


def get_grus(configs: list[GRUConfig], device=None, eval_size: int | None = None) -> tuple[RepeatGRU, list[dict]]:
    """The trained GRUs of ``configs`` as one frozen group in eval mode, and their manifests: each
    from the cache, the missing ones trained now (as one group) and cached one entry per model."""
    device = device or default_device()
    found = cache.get_many("gru", [gru_entry(c) for c in configs])
    missing = [i for i, f in enumerate(found) if f is None]
    if missing:
        start = time.time()
        model, metrics = train_grus([configs[i] for i in missing], device, eval_size)
        for j, i in enumerate(missing):
            found[i] = cache.put("gru", *gru_entry(configs[i]), model.member_state(j), metrics[j], time.time() - start)
    model = RepeatGRU([c.model_config for c in configs]).load_members([state for state, _ in found])
    model.to(device).eval().requires_grad_(False)
    return model, [manifest for _, manifest in found]


def get_gru(config: GRUConfig, device=None, eval_size: int | None = None) -> tuple[RepeatGRU, dict]:
    """One trained GRU (a group of one), from the cache or trained now and cached."""
    model, (manifest,) = get_grus([config], device, eval_size)
    return model, manifest

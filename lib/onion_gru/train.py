"""Training and evaluation of the repeat GRU, and the cached `get_gru` that every analysis uses."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass

import torch

from . import cache, data
from .model import ModelConfig, RepeatGRU, exact_match, sequence_loss
from .profiles import Profile


@dataclass(frozen=True)
class GRUConfig:
    """Everything that determines a trained GRU; stored in its manifest and hashed into its key."""
    hidden_size: int
    variant: str
    seed: int
    steps: int
    eval_every: int
    train_size: int = 1_000_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1  # AdamW, on all parameters, as the authors

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(self.hidden_size, self.variant)

    @property
    def label(self) -> str:
        return f"N{self.hidden_size}-{self.variant}-s{self.seed}"

    @classmethod
    def from_profile(cls, profile: Profile, hidden_size: int, variant: str, seed: int) -> "GRUConfig":
        return cls(hidden_size, variant, seed, profile.gru_steps, profile.eval_every,
                   profile.train_size, profile.batch_size)


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


def optimizer(model: torch.nn.Module, config: "GRUConfig") -> torch.optim.Optimizer:
    # fused: one kernel for the whole update instead of a Python loop over parameters (equal to the
    # default implementation up to float rounding)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)


def training_step(model: RepeatGRU, opt: torch.optim.Optimizer, x: torch.Tensor, l: torch.Tensor,
                  tokens_per_batch: float | None = None) -> torch.Tensor:
    loss = sequence_loss(model(x, l), x, l, tokens_per_batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def batch(tokens: torch.Tensor, lengths: torch.Tensor, idx: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``idx`` trimmed to their longest sequence, as long tensors on ``device``."""
    l = lengths[idx]
    return tokens[idx, :int(l.max())].long().to(device), l.long().to(device)


@torch.inference_mode()
def evaluate(model: RepeatGRU, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 1024) -> dict:
    """Sequence exact match with teacher forcing (the authors' metric), free-running greedy exact
    match, and teacher-forced accuracy by length."""
    was_training = model.training
    model.eval()
    tf, greedy = [], []
    for start in range(0, len(tokens), batch_size):
        x, l = batch(tokens, lengths, torch.arange(start, min(start + batch_size, len(tokens))), model.device)
        h = model.encode(x, l)
        tf.append(exact_match(model.decode(h, x, lengths=l).argmax(-1), x, l).cpu())
        greedy.append(exact_match(model.generate(h, x.shape[1]), x, l).cpu())
    model.train(was_training)
    return summarize(torch.cat(tf), lengths, torch.cat(greedy))


def summarize(correct: torch.Tensor, lengths: torch.Tensor, greedy: torch.Tensor | None = None) -> dict:
    out = {"accuracy": correct.float().mean().item(), "n": len(correct),
           "by_length": {int(L): correct[lengths == L].float().mean().item() for L in lengths.unique()}}
    if greedy is not None:
        out["greedy_accuracy"] = greedy.float().mean().item()
    return out


def progress_enabled() -> bool:
    """A live progress bar on terminals only: silent in notebooks, logs and CI."""
    quiet = os.environ.get("CI") or os.environ.get("ONION_GRU_QUIET") or "JPY_PARENT_PID" in os.environ
    return sys.stderr.isatty() and not quiet


def train_gru(config: GRUConfig, device=None, eval_size: int | None = None,
              batching: str = "random") -> tuple[RepeatGRU, dict]:
    """Train from scratch. Returns the model and metrics: the final validation result and the curve.
    ``batching="length_buckets"`` is for the speed experiment only (see LengthBucketSampler)."""
    if batching not in SAMPLERS:
        raise ValueError(f"unknown batching {batching!r}; choose from {sorted(SAMPLERS)}")
    device = device or default_device()
    torch.manual_seed(config.seed)
    model = RepeatGRU(config.model_config).to(device)
    opt = optimizer(model, config)
    tokens, lengths = data.load("train", size=config.train_size)
    v_tokens, v_lengths = data.load("valid")
    v_tokens, v_lengths = v_tokens[:eval_size], v_lengths[:eval_size]
    sampler = SAMPLERS[batching](lengths, config.batch_size, config.seed)
    # A bucket's token mean would weigh each length by its number of sequences rather than tokens;
    # dividing the token sum by the expected token count keeps the expected gradient of random batches.
    norm = None if batching == "random" else config.batch_size * lengths.float().mean().item()
    curve, start, show = [], time.time(), progress_enabled()
    for step in range(1, config.steps + 1):
        x, l = batch(tokens, lengths, next(sampler), device)
        loss = training_step(model, opt, x, l, norm)
        if step % config.eval_every == 0 or step == config.steps:
            result = evaluate(model, v_tokens, v_lengths)
            curve.append({"step": step, "loss": loss.item(), "accuracy": result["accuracy"],
                          "seconds": round(time.time() - start, 2)})
            if show:
                eta = (time.time() - start) / step * (config.steps - step)
                print(f"\r{config.label}: step {step}/{config.steps} loss {loss.item():.3f} "
                      f"acc {result['accuracy']:.3f} ETA {eta / 60:.1f} min", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    final = evaluate(model, v_tokens, v_lengths)
    longer = {name: evaluate(model, *data.load(name))["accuracy"]
              for name in ("valid_longer_1", "valid_longer_2", "valid_longer_1_norepeat")}
    metrics = {"valid": final, "longer": longer, "curve": curve,
               "seconds_per_step": (time.time() - start) / config.steps}
    return model, metrics


def get_gru(config: GRUConfig, device=None, eval_size: int | None = None) -> tuple[RepeatGRU, dict]:
    """The trained GRU for ``config``: from the cache, or trained now and cached.
    The returned model is frozen (requires_grad False) and in eval mode."""
    device = device or default_device()

    def compute():
        model, metrics = train_gru(config, device, eval_size)
        return model.state_dict(), metrics

    state, manifest = cache.get_or_compute("gru", config.label, asdict(config), compute)
    model = RepeatGRU(config.model_config)
    model.load_state_dict(state)
    model.to(device).eval().requires_grad_(False)
    return model, manifest

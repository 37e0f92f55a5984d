"""The one training loop (``fit``) of every model the project trains, resumable from checkpoints;
the repeat GRU's training and evaluation on it, and the cached ``get_gru`` that every analysis uses."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Protocol

import torch

from . import cache, data
from .layers import from_members
from .model import ModelConfig, RepeatRNN, exact_match, sequence_loss
from .profiles import Budget, Profile


@dataclass(frozen=True)
class RNNConfig:
    """Everything that determines a trained repeat RNN (a GRU unless ``cell`` says otherwise); stored in
    its manifest and hashed into its key."""
    hidden_size: int
    variant: str
    seed: int
    budget: Budget
    train_size: int = 1_000_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1  # AdamW, on all parameters, as the authors
    cell: str = "gru"  # "lstm" or "elman" for the cell comparison (cells.py)
    precision: str = "fp32"  # "bf16": the GRU's recurrent products in bf16 (packed.PRECISIONS)

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(self.hidden_size, self.variant, self.cell, self.precision)

    @property
    def label(self) -> str:
        return (("" if self.cell == "gru" else f"{self.cell}-") + f"N{self.hidden_size}-{self.variant}-s{self.seed}"
                + ("" if self.precision == "fp32" else f"-{self.precision}"))

    @classmethod
    def from_profile(cls, profile: Profile, hidden_size: int, variant: str, seed: int) -> "RNNConfig":
        return cls(hidden_size, variant, seed, profile.gru, profile.train_size, profile.batch_size, cell=profile.cell,
                   precision=profile.precision)


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

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.pos = state["order"], state["pos"]


def optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW on all of ``model``'s parameters (GRUs and methods alike, as the authors)."""
    # fused: one kernel for the whole update instead of a Python loop over parameters (equal to the
    # default implementation up to float rounding).  AdamW is elementwise, so a group's members take
    # the steps they would alone.
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    """One step of every member on its loss [K] (the sum: each member's parameters get the gradient
    of its own loss); returns the losses, detached."""
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
def evaluate(model: RepeatRNN, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 1024) -> list[dict]:
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


class Stopped(Exception):
    """A run stopped by its caller (``train --stop-after``) at ``step``, its state in a checkpoint."""

    def __init__(self, step: int, max_steps: int):
        super().__init__(f"stopped at step {step:,} of at most {max_steps:,}")
        self.step, self.max_steps = step, max_steps


class Trainee(Protocol):
    """What ``fit`` trains: a group of K models (GRUs, or one method on K frozen GRUs)."""
    module: torch.nn.Module  # every parameter the optimizer updates
    generators: list[torch.Generator]  # random state the steps draw from besides the samplers
    device: torch.device

    def loss(self, x: torch.Tensor, l: torch.Tensor) -> torch.Tensor: ...  # [K], on each member's batch

    def accuracies(self, tokens: torch.Tensor, lengths: torch.Tensor) -> list[float]: ...  # the curve's points

    def member_state(self, k: int) -> dict: ...


def fit(trainee: Trainee, configs: list, train_set, curve_set, checkpoint: cache.Checkpoint | None = None,
        stop=None) -> tuple[Schedule, int, float]:
    """The one training loop: AdamW steps of every member on its own seeded batches of
    ``train_set`` (tokens, lengths), evaluated every ``budget.eval_every`` steps on ``curve_set``, each
    member stopped by the budget's rule (``Schedule``).  Every few minutes, at an evaluation point, the
    whole run (weights, optimizer, samplers, generators, schedule, step) goes to ``checkpoint``, and a
    run finds its checkpoint there and continues from it: a resumed run ends with the bits of one
    never interrupted.  When ``stop()`` turns true the run checkpoints and raises ``Stopped``.
    Returns the schedule, the last step, and the seconds it took (resumed runs included)."""
    config = configs[0]
    budget, K = config.budget, len(configs)
    opt = optimizer(trainee.module, config.lr, config.weight_decay)
    tokens, lengths = train_set
    samplers = [BatchSampler(len(tokens), config.batch_size, c.seed) for c in configs]
    schedule, step, elapsed = Schedule(budget, K), 0, 0.0
    saved = checkpoint.load() if checkpoint else None
    if saved:
        trainee.module.load_state_dict(saved["module"])
        opt.load_state_dict(saved["optimizer"])
        for sampler, state in zip(samplers, saved["samplers"]):
            sampler.load_state_dict(state)
        for generator, state in zip(trainee.generators, saved["generators"]):
            generator.set_state(state)
        torch.set_rng_state(saved["rng"])
        schedule.__dict__.update(saved["schedule"])
        step, elapsed = saved["step"], saved["seconds"]

    def save():
        checkpoint.save({"module": trainee.module.state_dict(), "optimizer": opt.state_dict(),
                         "samplers": [s.state_dict() for s in samplers],
                         "generators": [g.get_state() for g in trainee.generators], "rng": torch.get_rng_state(),
                         "schedule": {k: v for k, v in schedule.__dict__.items() if k != "budget"},
                         "step": step, "seconds": time.time() - start})

    start, last_save = time.time() - elapsed, time.time()
    show = progress_enabled()
    while step < budget.max_steps:
        step += 1
        loss = optimizer_step(opt, trainee.loss(*batch(tokens, lengths, sample(samplers), trainee.device)))
        if budget.evaluates(step):
            accuracies, seconds = trainee.accuracies(*curve_set), round(time.time() - start, 2)
            points = [{"loss": l, "accuracy": a, "seconds": seconds} for a, l in zip(accuracies, loss.tolist())]
            if show:
                print(f"\r{checkpoint.name if checkpoint else ''}: step {step} acc "
                      + " ".join(f"{a:.3f}" for a in accuracies), end="", file=sys.stderr, flush=True)
            if schedule.record(step, points, trainee.member_state):
                break
            if checkpoint and time.time() - last_save >= checkpoint.every:
                save()
                last_save = time.time()
        if stop is not None and stop():
            if checkpoint:
                save()
            raise Stopped(step, budget.max_steps)
    if show:
        print(file=sys.stderr)
    return schedule, step, time.time() - start


class RNNTrainee:
    """A group of repeat RNNs trained on the task (``fit``)."""

    def __init__(self, model: RepeatRNN):
        self.module, self.generators, self.device = model, [], model.device

    def loss(self, x, l):
        return sequence_loss(self.module(x, l), x, l)

    def accuracies(self, tokens, lengths):
        return [r["accuracy"] for r in evaluate(self.module, tokens, lengths)]

    def member_state(self, k):
        return self.module.member_state(k)


def train_grus(configs: list[RNNConfig], device=None, eval_size: int | None = None,
               checkpoint: cache.Checkpoint | None = None, stop=None) -> tuple[RepeatRNN, list[dict]]:
    """Train a group of GRUs from scratch, each from its own seed's initialisation and batch order
    (``fit``; ``checkpoint`` and ``stop`` as there).  Returns the group, each member as it was when
    it stopped, and each member's metrics: the final validation result, the curve, the steps run."""
    check_group(configs, ("variant", "seed"))
    config, K = configs[0], len(configs)
    model = from_members(lambda members: RepeatRNN([configs[k].model_config for k in members]),
                         [c.seed for c in configs]).to(device or default_device())
    trainee = RNNTrainee(model)
    v_tokens, v_lengths = data.load("valid")
    v_tokens, v_lengths = v_tokens[:eval_size], v_lengths[:eval_size]
    curve_set = v_tokens[:config.budget.curve_size], v_lengths[:config.budget.curve_size]
    schedule, step, seconds = fit(trainee, configs, data.load("train", size=config.train_size), curve_set,
                                  checkpoint, stop)
    model.load_members(schedule.states)
    final = evaluate(model, v_tokens, v_lengths)
    longer = {name: [r["accuracy"] for r in evaluate(model, *data.load(name))]
              for name in ("valid_longer_1", "valid_longer_2", "valid_longer_1_norepeat")}
    return model, [{"valid": final[k], "longer": {name: v[k] for name, v in longer.items()},
                    "curve": schedule.curves[k], "steps": schedule.stopped[k], "flattened": schedule.flattened[k],
                    "seconds_per_step": seconds / step, "group_size": K} for k in range(K)]


def gru_entry(config: RNNConfig) -> tuple[str, dict]:
    """The cache label and config of a trained GRU."""
    return config.label, asdict(config)


def gru_hash(config: RNNConfig) -> str:
    """The cache key of a trained GRU: how an analysis names the model it studies."""
    return cache.config_hash(gru_entry(config)[1])


def get_grus(configs: list[RNNConfig], device=None, eval_size: int | None = None, stop=None, train: bool = True
             ) -> tuple[RepeatRNN, list[dict]]:
    """The trained GRUs of ``configs`` as one frozen group in eval mode, and their manifests: each
    from the cache, the missing ones trained now (as one group, resumed from its checkpoint if it has
    one; ``stop`` as in ``fit``) and cached one entry per model; ``train`` False: missing ones raise
    ``cache.Missing``."""
    device = device or default_device()

    def train_missing(missing, checkpoint):
        model, metrics = train_grus([configs[i] for i in missing], device, eval_size, checkpoint, stop)
        return [model.member_state(j) for j in range(len(missing))], metrics
    found = cache.get_or_train("gru", [gru_entry(c) for c in configs], train_missing if train else None)
    model = RepeatRNN([c.model_config for c in configs]).load_members([state for state, _ in found])
    model.to(device).eval().requires_grad_(False)
    return model, [manifest for _, manifest in found]


def get_gru(config: RNNConfig, device=None, eval_size: int | None = None, train: bool = True
            ) -> tuple[RepeatRNN, dict]:
    """One trained GRU (a group of one), from the cache or trained now and cached (``train`` as in
    ``get_grus``)."""
    model, (manifest,) = get_grus([config], device, eval_size, train=train)
    return model, manifest

"""The one training loop (``fit``) of every model the project trains (GRUs, interventions, probes),
resumable from checkpoints, with what it is made of: seeded batch samplers, the optimizer, the
convergence rule's schedule (``profiles.Budget``) and the one evaluation loop (``exact_matches``).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from typing import Protocol

import torch

from .checkpoint import Checkpoint
from .profiles import Budget


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


def exact_matches(tokens: torch.Tensor, lengths: torch.Tensor, K: int, device, batch_size: int, score) -> dict:
    """The one evaluation loop (of the GRUs and of every analysis): the set in order, in batches of
    ``batch_size`` (each trimmed to its longest sequence), ``score(x, l)`` -> {name: correct [K, B]};
    returns each name's [K, n], on the CPU."""
    parts: dict[str, list] = {}
    for start in range(0, len(tokens), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(tokens))).expand(K, -1)
        for name, correct in score(*batch(tokens, lengths, idx, device)).items():
            parts.setdefault(name, []).append(correct.cpu())
    return {name: torch.cat(p, 1) for name, p in parts.items()}


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
        self.kept: dict[int, list[dict]] = {}  # every member's state at the steps ``fit`` was asked to keep

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


def fit(trainee: Trainee, configs: list, train_set, curve_set, checkpoint: Checkpoint | None = None,
        stop=None, keep: tuple[int, ...] = ()) -> tuple[Schedule, int, float]:
    """The one training loop: AdamW steps of every member on its own seeded batches of
    ``train_set`` (tokens, lengths), evaluated every ``budget.eval_every`` steps on ``curve_set``, each
    member stopped by the budget's rule (``Schedule``).  Every few minutes, at an evaluation point, the
    whole run (weights, optimizer, samplers, generators, schedule, step) goes to ``checkpoint``, and a
    run finds its checkpoint there and continues from it: a resumed run ends with the bits of one
    never interrupted.  When ``stop()`` turns true the run checkpoints and raises ``Stopped``.
    Each member's state at the steps ``keep`` goes to ``schedule.kept`` (snapshots: train.py).
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
        if step in keep:
            schedule.kept[step] = [trainee.member_state(k) for k in range(K)]
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

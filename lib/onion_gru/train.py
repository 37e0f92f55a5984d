"""The repeat RNN (GRU, LSTM or Elman: ``RNNConfig.cell``) trained on the task by the one training
loop (``loop.fit``), its evaluation, and the cached ``get_rnn`` that every analysis uses."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from . import cache, data
from .checkpoint import Checkpoint, load_or_compute
from .layers import from_members
from .loop import check_group, default_device, exact_matches, fit, summarize
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
        # a fixed budget names its length: the snapshots of one run differ in nothing else (profiles.at_step)
        return (("" if self.cell == "gru" else f"{self.cell}-") + f"N{self.hidden_size}-{self.variant}-s{self.seed}"
                + ("" if self.precision == "fp32" else f"-{self.precision}")
                + ("" if self.budget.patience else f"-step{self.budget.max_steps}"))

    @classmethod
    def from_profile(cls, profile: Profile, hidden_size: int, variant: str, seed: int) -> "RNNConfig":
        return cls(hidden_size, variant, seed, profile.gru, profile.train_size, profile.batch_size, cell=profile.cell,
                   precision=profile.precision)


@torch.inference_mode()
def evaluate(model: RepeatRNN, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 1024) -> list[dict]:
    """Per member, on the same set: sequence exact match with teacher forcing (the authors' metric),
    free-running greedy exact match, and teacher-forced accuracy by length."""
    def score(x, l):
        h = model.encode(x, l)
        return {"tf": exact_match(model.decode(h, x, lengths=l).argmax(-1), x, l),
                "greedy": exact_match(model.generate(h, x.shape[2]), x, l)}
    was_training = model.training
    model.eval()
    correct = exact_matches(tokens, lengths, len(model.configs), model.device, batch_size, score)
    model.train(was_training)
    return [summarize(correct["tf"][k], lengths, correct["greedy"][k]) for k in range(len(model.configs))]


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


def train_rnns(configs: list[RNNConfig], device=None, eval_size: int | None = None,
               checkpoint: Checkpoint | None = None, stop=None) -> tuple[RepeatRNN, list[dict]]:
    """Train a group of GRUs from scratch, each from its own seed's initialisation and batch order
    (``fit``; ``checkpoint`` and ``stop`` as there).  Returns the group, each member as it was when
    it stopped, and each member's metrics: the final validation result, the curve, the steps run.

    Configs that differ only in the length of a fixed budget are one run cut at several steps (the
    snapshots of profiles.at_step): it is trained once, to the longest, and each member is its
    state at its own step (``fit``'s ``keep``), with its curve up to there."""
    check_group(configs, ("variant", "seed", "budget"))
    longest = max((c.budget for c in configs), key=lambda b: b.max_steps)
    if any(replace(c.budget, max_steps=longest.max_steps) != longest or (c.budget.patience and c.budget != longest)
           for c in configs):
        raise ValueError("a group's budgets may differ only in the length of a fixed budget (snapshots)")
    runs = list(dict.fromkeys((c.variant, c.seed) for c in configs))  # one run per (variant, seed)
    run_configs = [replace(configs[0], variant=v, seed=seed, budget=longest) for v, seed in runs]
    model = from_members(lambda members: RepeatRNN([run_configs[k].model_config for k in members]),
                         [c.seed for c in run_configs]).to(device or default_device())
    v_tokens, v_lengths = data.load("valid")
    v_tokens, v_lengths = v_tokens[:eval_size], v_lengths[:eval_size]
    curve_set = v_tokens[:longest.curve_size], v_lengths[:longest.curve_size]
    keep = tuple(sorted({c.budget.max_steps for c in configs} - {longest.max_steps}))
    schedule, step, seconds = fit(RNNTrainee(model), run_configs, data.load("train", size=configs[0].train_size),
                                  curve_set, checkpoint, stop, keep)
    results = {}  # step -> (the runs' states there, their validation results, and on the longer sets)
    for at in {c.budget.max_steps for c in configs}:
        states = schedule.kept[at] if at in schedule.kept else schedule.states
        model.load_members(states)
        results[at] = (states, evaluate(model, v_tokens, v_lengths),
                       {name: [r["accuracy"] for r in evaluate(model, *data.load(name))]
                        for name in ("valid_longer_1", "valid_longer_2", "valid_longer_1_norepeat")})
    members, metrics = [], []
    for c in configs:
        k, at = runs.index((c.variant, c.seed)), c.budget.max_steps
        states, final, longer = results[at]
        cut = at in schedule.kept
        members.append(states[k])
        metrics.append({"valid": final[k], "longer": {name: v[k] for name, v in longer.items()},
                        "curve": [p for p in schedule.curves[k] if p["step"] <= at],
                        "steps": at if cut else schedule.stopped[k], "flattened": False if cut else schedule.flattened[k],
                        "seconds_per_step": seconds / step, "group_size": len(runs)}
                       | ({"snapshot_of": longest.max_steps} if cut else {}))
    return RepeatRNN([c.model_config for c in configs]).to(model.device).load_members(members), metrics


def rnn_entry(config: RNNConfig) -> tuple[str, dict]:
    """The cache label and config of a trained GRU."""
    return config.label, asdict(config)


def rnn_hash(config: RNNConfig) -> str:
    """The cache key of a trained GRU: how an analysis names the model it studies."""
    return cache.config_hash(rnn_entry(config)[1])


def get_rnns(configs: list[RNNConfig], device=None, eval_size: int | None = None, stop=None, train: bool = True
             ) -> tuple[RepeatRNN, list[dict]]:
    """The trained GRUs of ``configs`` as one frozen group in eval mode, and their manifests: each
    from the cache, the missing ones trained now (as one group, resumed from its checkpoint if it has
    one; ``stop`` as in ``fit``) and cached one entry per model; ``train`` False: missing ones raise
    ``cache.Missing``."""
    device = device or default_device()

    def train_missing(missing, checkpoint):
        model, metrics = train_rnns([configs[i] for i in missing], device, eval_size, checkpoint, stop)
        return [model.member_state(j) for j in range(len(missing))], metrics
    found = load_or_compute("gru", [rnn_entry(c) for c in configs], train_missing if train else None)
    model = RepeatRNN([c.model_config for c in configs]).load_members([state for state, _ in found])
    model.to(device).eval().requires_grad_(False)
    return model, [manifest for _, manifest in found]


def get_rnn(config: RNNConfig, device=None, eval_size: int | None = None, train: bool = True
            ) -> tuple[RepeatRNN, dict]:
    """One trained GRU (a group of one), from the cache or trained now and cached (``train`` as in
    ``get_rnns``)."""
    model, (manifest,) = get_rnns([config], device, eval_size, train=train)
    return model, manifest

"""One training and evaluation routine for every intervention and probe, cached like the GRUs.

The GRU is frozen: it is not in the optimizer, its parameters have requires_grad False, and
gradients only flow *through* its decoder into the method's parameters.  Evaluation draws its
corruptions from a fixed seed, so a reported number is reproducible (the authors redrew them at every
evaluation).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from . import cache, data
from .interventions import INTERVENTIONS, _Intervention
from .model import RepeatGRU, exact_match, sequence_loss
from .probes import PROBES
from .profiles import Profile
from .train import BatchSampler, GRUConfig, batch, default_device, get_gru, summarize

METHODS = {**INTERVENTIONS, **PROBES}
INTERVENTION_METHODS, PROBE_METHODS = tuple(INTERVENTIONS), tuple(PROBES)
EVAL_SEED = 1_000_003  # the corruptions every evaluation uses


@dataclass(frozen=True)
class AnalysisConfig:
    method: str
    gru_hash: str  # the cache key of the frozen GRU it analyses
    steps: int
    seed: int = 0
    train_size: int = 1_000_000
    eval_size: int = 5_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {sorted(METHODS)}")

    @classmethod
    def from_profile(cls, profile: Profile, method: str, gru: GRUConfig) -> "AnalysisConfig":
        return cls(method, cache.config_hash(asdict(gru)), profile.analysis_steps, gru.seed,
                   profile.train_size, profile.eval_size, profile.batch_size)


def build(method: str, hidden_size: int) -> torch.nn.Module:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    return METHODS[method](hidden_size)


@torch.no_grad()
def evaluate_method(gru: RepeatGRU, module, tokens, lengths, batch_size: int = 1000) -> dict:
    """Exact match against the original sequence, teacher-forced and free-running, with the same
    fixed corruptions; ``floor`` is the teacher-forced accuracy of the corrupted, unpatched state."""
    was_training = module.training
    module.eval()
    generator = torch.Generator().manual_seed(EVAL_SEED)
    tf, free, floor = [], [], []
    for start in range(0, len(tokens), batch_size):
        x, l = batch(tokens, lengths, torch.arange(start, min(start + batch_size, len(tokens))), gru.device)
        g_state = generator.get_state()
        h = module.state(gru, x, l, generator)
        tf.append(exact_match(module.readout(gru, h, x, l).argmax(-1), x, l).cpu())
        free.append(exact_match(module.generate(gru, h, x.shape[1]), x, l).cpu())
        if isinstance(module, _Intervention):  # replay the same corruption without the patch
            generator.set_state(g_state)
            h0 = module.state(gru, x, l, generator, patch=False)
            floor.append(exact_match(gru.decode(h0, x).argmax(-1), x, l).cpu())
    module.train(was_training)
    out = summarize(torch.cat(tf), lengths, torch.cat(free))
    if floor:
        out["floor"] = torch.cat(floor).float().mean().item()
    return out


def method_step(gru: RepeatGRU, module, opt, x, l, generator) -> torch.Tensor:
    """One optimizer step of a method on the frozen GRU's states (gradients flow through the GRU)."""
    h = module.state(gru, x, l, generator)
    loss = sequence_loss(module.readout(gru, h, x, l), x, l) + module.regularizer()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def method_optimizer(module: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW for a method's own parameters; fused: one kernel for the whole update."""
    return torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def train_method(gru: RepeatGRU, config: AnalysisConfig, eval_every: int | None = None,
                 train_data=None, eval_data: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """Train ``config.method`` on the frozen ``gru`` and evaluate it on the method's sets.
    ``train_data`` (tokens, lengths) and ``eval_data`` {name: (tokens, lengths)} replace the method's
    own sets (the hand-built known-answer tests use short sequences)."""
    torch.manual_seed(config.seed)
    module = build(config.method, gru.config.hidden_size).to(gru.device)
    opt = method_optimizer(module, config.lr, config.weight_decay)
    tokens, lengths = train_data or data.load(module.train_set, size=config.train_size)
    sampler = BatchSampler(len(tokens), config.batch_size, config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    gru_before = {k: v.clone() for k, v in gru.state_dict().items()}
    start, curve = time.time(), []
    # cuDNN backpropagates through an RNN only in training mode; the GRU has no dropout, so train
    # mode changes nothing else (the authors' GRU also stayed in train mode).  Its weights stay frozen.
    gru.train()
    for step in range(1, config.steps + 1):
        loss = method_step(gru, module, opt, *batch(tokens, lengths, next(sampler), gru.device), generator)
        if eval_every and step % eval_every == 0:
            curve.append({"step": step, "loss": loss.item()})
    seconds = time.time() - start
    gru.eval()
    assert all(torch.equal(gru_before[k], v) for k, v in gru.state_dict().items()), "the GRU changed"
    metrics = {"chance": module.chance, "seconds_per_step": seconds / max(config.steps, 1), "curve": curve}
    eval_data = eval_data or {name: data.load(name) for name in module.eval_sets}
    for name, (t, l) in eval_data.items():
        metrics[name] = evaluate_method(gru, module, t[:config.eval_size], l[:config.eval_size])
    metrics["accuracy"] = metrics[next(iter(eval_data))]["accuracy"]
    return module, metrics


def get_analysis(gru_config: GRUConfig, config: AnalysisConfig, device=None) -> tuple[torch.nn.Module, dict]:
    """The trained method for a cached GRU: loaded, or trained now and cached."""
    gru, _ = get_gru(gru_config, device)
    if config.gru_hash != cache.config_hash(asdict(gru_config)):
        raise ValueError("AnalysisConfig.gru_hash does not match the GRU config")

    def compute():
        module, metrics = train_method(gru, config)
        return module.state_dict(), metrics

    label = f"{gru_config.label}-{config.method}"
    state, manifest = cache.get_or_compute("analysis", label, asdict(config), compute)
    module = build(config.method, gru_config.hidden_size)
    module.load_state_dict(state)
    return module.to(gru.device).eval(), manifest


def run_profile_cell(profile: Profile, size: int, variant: str, seed: int, method: str, device=None) -> dict:
    """Manifest of one (GRU, method) cell of a profile, computing what is missing."""
    gru_config = GRUConfig.from_profile(profile, size, variant, seed)
    return get_analysis(gru_config, AnalysisConfig.from_profile(profile, method, gru_config), device)[1]

"""One training and evaluation routine for every intervention and probe, cached like the GRUs.

The GRU is frozen: it is not in the optimizer, its parameters have requires_grad False, and
gradients only flow *through* its decoder into the method's parameters.  Evaluation draws its
corruptions from a fixed seed, so a reported number is reproducible (the authors redrew them at every
evaluation).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from . import data
from .checkpoint import load_or_compute
from .interventions import INTERVENTIONS, ORTHOGONAL_MAPS, _Intervention
from .layers import from_members, group_size, member_state, stack_states
from .model import RepeatRNN, exact_match, sequence_loss
from .probes import PROBES
from .profiles import Budget, Profile
from .train import RNNConfig, evaluate as evaluate_rnn, get_rnns, rnn_hash
from .loop import check_group, default_device, exact_matches, fit, summarize

METHODS = {**INTERVENTIONS, **PROBES}
INTERVENTION_METHODS, PROBE_METHODS = tuple(INTERVENTIONS), tuple(PROBES)
EVAL_SEED = 1_000_003  # the corruptions every evaluation uses


@dataclass(frozen=True)
class AnalysisConfig:
    method: str
    gru_hash: str  # the cache key of the frozen GRU it analyses
    budget: Budget
    seed: int = 0
    train_size: int = 1_000_000
    eval_size: int = 5_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    orthogonal_map: str = "matrix_exp"  # the rotation's parametrization (linear interventions only)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {sorted(METHODS)}")
        if self.orthogonal_map not in ORTHOGONAL_MAPS:
            raise ValueError(f"unknown orthogonal_map {self.orthogonal_map!r}; choose from {ORTHOGONAL_MAPS}")
        if self.orthogonal_map != "matrix_exp" and not METHODS[self.method].rotated:
            raise ValueError(f"{self.method} has no rotation: its orthogonal_map stays 'matrix_exp'")

    @classmethod
    def from_profile(cls, profile: Profile, method: str, gru: RNNConfig) -> "AnalysisConfig":
        return cls(method, rnn_hash(gru), profile.analysis, gru.seed, profile.train_size, profile.eval_size,
                   profile.batch_size, orthogonal_map=profile.orthogonal_map if METHODS[method].rotated else "matrix_exp")


def build(method: str, state_size: int, seeds=(0,), orthogonal_map: str = "matrix_exp") -> torch.nn.Module:
    """A group of len(seeds) ``method`` modules on states of width ``state_size``, member k
    initialised from ``seeds[k]``; a rotated (linear) intervention's rotation by ``orthogonal_map``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    return from_members(lambda members: new_module(method, state_size, len(members), orthogonal_map), seeds)


def new_module(method: str, state_size: int, k: int, orthogonal_map: str = "matrix_exp") -> torch.nn.Module:
    """A group of k ``method`` modules, initialised from torch's global generator as it stands."""
    options = {"orthogonal_map": orthogonal_map} if METHODS[method].rotated else {}
    return METHODS[method](state_size, k, **options)


def generators(seeds) -> list[torch.Generator]:
    """One generator per member: the corruptions (and Gumbel noise) each member draws."""
    return [torch.Generator().manual_seed(seed) for seed in seeds]


@torch.no_grad()
def evaluate_method(gru: RepeatRNN, module, tokens, lengths, batch_size: int = 1000, position: int | None = None
                    ) -> list[dict]:
    """Per member of the group (``module``'s member k on ``gru``'s member k, on the same set): exact
    match against the original sequence, teacher-forced and free-running, with the same fixed
    corruptions; ``floor`` is the teacher-forced accuracy of the corrupted, unpatched state.
    ``position`` (interventions): every example corrupted at that position alone."""
    options = {} if position is None else {"position": position}
    K, gens = group_size(module), generators([EVAL_SEED] * group_size(module))

    def score(x, l):
        g_states = [g.get_state() for g in gens]
        h = module.state(gru, x, l, gens, **options)
        out = {"tf": exact_match(module.readout(gru, h, x, l).argmax(-1), x, l),
               "free": exact_match(module.generate(gru, h, x.shape[2]), x, l)}
        if isinstance(module, _Intervention):  # replay the same corruption without the patch
            for g, state in zip(gens, g_states):
                g.set_state(state)
            h0 = module.state(gru, x, l, gens, patch=False, **options)
            out["floor"] = exact_match(gru.decode(h0, x).argmax(-1), x, l)
        return out
    was_training = module.training
    module.eval()
    correct = exact_matches(tokens, lengths, K, gru.device, batch_size, score)
    module.train(was_training)
    out = [summarize(correct["tf"][k], lengths, correct["free"][k]) for k in range(K)]
    if "floor" in correct:
        floors = correct["floor"].float().mean(1)
        for k in range(K):
            out[k]["floor"] = floors[k].item()
    return out


def evaluate_positions(gru: RepeatRNN, module: _Intervention, tokens, lengths) -> list[list[dict]]:
    """Per member, per position p of the set's width (0 .. 8): the intervention's accuracy when position p
    alone is corrupted (linear unigram: p swapped with a partner, its variable's coordinates from the
    partner; linear bigram: p corrupted, the pairs touching it from a source sharing p-1 .. p+1;
    onion: p replaced and repaired), on the examples longer than p (an even count, for the pairing),
    with the fixed evaluation corruptions; ``floor`` is the unpatched corrupted state's accuracy at p."""
    out = [[] for _ in range(group_size(module))]
    for p in range(tokens.shape[-1]):
        longer = torch.nonzero(lengths > p).flatten()
        longer = longer[:len(longer) // 2 * 2]
        results = evaluate_method(gru, module, tokens[longer], lengths[longer], position=p)
        for member, result in zip(out, results):
            member.append({"position": p, "examples": len(longer), "accuracy": result["accuracy"],
                           "greedy_accuracy": result["greedy_accuracy"], "floor": result["floor"]})
    return out


class MethodTrainee:
    """One method trained on each member of a frozen GRU group (``loop.fit``): gradients flow
    through the GRU into the method's parameters only; each member draws its corruptions (and
    Gumbel noise) from its own generator."""

    def __init__(self, gru: RepeatRNN, configs: list[AnalysisConfig]):
        config = configs[0]
        self.gru, self.device = gru, gru.device
        self.module = build(config.method, gru.state_size, [c.seed for c in configs], config.orthogonal_map).to(gru.device)
        self.generators = generators(c.seed for c in configs)

    def loss(self, x, l):
        h = self.module.state(self.gru, x, l, self.generators)
        return sequence_loss(self.module.readout(self.gru, h, x, l), x, l) + self.module.regularizer()

    def accuracies(self, tokens, lengths):
        return [r["accuracy"] for r in evaluate_method(self.gru, self.module, tokens, lengths)]

    def member_state(self, k):
        return member_state(self.module.state_dict(), k)


def train_methods(gru: RepeatRNN, configs: list[AnalysisConfig], train_data=None, eval_data: dict | None = None,
                  checkpoint=None, stop=None) -> tuple[torch.nn.Module, list[dict]]:
    """Train one method on each member of the frozen GRU group (config k on member k) as one group
    (``loop.fit``, with ``checkpoint`` and ``stop`` as there; the curve is the accuracy on the first
    ``curve_size`` sequences of the method's first evaluation set), then evaluate each on the
    method's sets.  ``train_data`` (tokens, lengths) and ``eval_data`` {name: (tokens, lengths)}
    replace the method's own sets (the hand-built known-answer tests use short sequences)."""
    check_group(configs, ("gru_hash", "seed"))
    config, K = configs[0], len(configs)
    trainee = MethodTrainee(gru, configs)
    module = trainee.module
    train_data = train_data or data.load(module.train_set, size=config.train_size)
    eval_data = eval_data or {name: data.load(name) for name in module.eval_sets}
    curve_set = [v[:config.budget.curve_size] for v in next(iter(eval_data.values()))]
    gru_before = {k: v.clone() for k, v in gru.state_dict().items()}
    gru.train()  # no dropout: train mode changes nothing; the weights stay frozen
    try:
        schedule, step, seconds = fit(trainee, configs, train_data, curve_set, checkpoint, stop)
    finally:
        gru.eval()
    assert all(torch.equal(gru_before[k], v) for k, v in gru.state_dict().items()), "the GRU changed"
    module.load_state_dict(stack_states(schedule.states))
    metrics = [{"chance": module.chance, "seconds_per_step": seconds / step, "curve": curve,
                "steps": stopped, "flattened": flat, "group_size": K}
               for curve, stopped, flat in zip(schedule.curves, schedule.stopped, schedule.flattened)]
    for name, (t, l) in eval_data.items():
        for m, result in zip(metrics, evaluate_method(gru, module, t[:config.eval_size], l[:config.eval_size])):
            m[name] = result
    for m in metrics:
        m["accuracy"] = m[next(iter(eval_data))]["accuracy"]
    return module, metrics


def analysis_entry(gru_config: RNNConfig, config: AnalysisConfig) -> tuple[str, dict]:
    """The cache label and config of an analysis."""
    if config.gru_hash != rnn_hash(gru_config):
        raise ValueError("AnalysisConfig.gru_hash does not match the GRU config")
    return f"{gru_config.label}-{config.method}", asdict(config)


def get_analyses(gru_configs: list[RNNConfig], configs: list[AnalysisConfig], device=None, stop=None,
                 train: bool = True) -> tuple[torch.nn.Module, list[dict]]:
    """One method on each of ``gru_configs`` (config k on GRU k), as one group in eval mode, with
    the manifests: from the cache, the missing ones trained now (one group, resumed from its
    checkpoint if it has one; ``stop`` as in ``loop.fit``) and cached one by one; ``train``
    False: missing ones raise ``cache.Missing``."""

    def train_missing(missing, checkpoint):
        gru, _ = get_rnns([gru_configs[i] for i in missing], device)
        module, metrics = train_methods(gru, [configs[i] for i in missing], checkpoint=checkpoint, stop=stop)
        return [member_state(module.state_dict(), j) for j in range(len(missing))], metrics
    found = load_or_compute("analysis", [analysis_entry(g, c) for g, c in zip(gru_configs, configs)],
                               train_missing if train else None)
    module = new_module(configs[0].method, gru_configs[0].model_config.state_size, len(configs),
                        configs[0].orthogonal_map)
    module.load_state_dict(stack_states([state for state, _ in found]))
    return module.to(device or default_device()).eval(), [manifest for _, manifest in found]


def get_analysis(gru_config: RNNConfig, config: AnalysisConfig, device=None) -> tuple[torch.nn.Module, dict]:
    """The trained method for one cached GRU (a group of one): loaded, or trained now and cached."""
    module, (manifest,) = get_analyses([gru_config], [config], device)
    return module, manifest


# The evaluations of a trained intervention beyond its own (computed by ``train`` and ``evaluate``
# from the cached models, never trained): kind -> (what its entry's config says it is, the set it
# scores: None, the method's own set as in the paper's protocol).
#   positions:         one position at a time, on the method's own set
#   matched:           on the length-9 "intervention" set, whatever the method's own set, beside the
#                      GRU's own accuracy on the very same sequences (notebook 02's matched table)
#   positions_length9: one position at a time on the length-9 set, so that every method's positions
#                      are scored on the same sequences (notebook 10)
MATCHED_SET = "intervention"
EVALUATIONS = {"positions": ("one position", None), "matched": ("length 9", MATCHED_SET),
               "positions_length9": ("one position, length 9", MATCHED_SET)}


def eval_set(kind: str, method: str) -> str:
    return EVALUATIONS[kind][1] or INTERVENTIONS[method].eval_sets[0]


def stored_as(kind: str, method: str) -> str:
    """The kind whose entry holds ``method``'s ``kind`` evaluation: one that scores the method's own
    set one position at a time is its "positions" (a linear method's set is the length-9 set), so
    that the same numbers are computed and stored once."""
    same = SCORERS[kind] is SCORERS["positions"] and eval_set(kind, method) == eval_set("positions", method)
    return "positions" if same else kind


def evaluations_of(method: str) -> list[str]:
    """The kinds of evaluation computed and stored for ``method`` (each of its entries once)."""
    return [kind for kind in EVALUATIONS if stored_as(kind, method) == kind]


def evaluation_entry(kind: str, gru_config: RNNConfig, config: AnalysisConfig) -> tuple[str, dict]:
    """The cache label and config of one evaluation (``EVALUATIONS``) of an intervention, stored as
    ``stored_as(kind, ...)``: keyed by the analysis it reads, the corruptions' seed and what it evaluates."""
    label, analysis = analysis_entry(gru_config, config)
    what = EVALUATIONS[stored_as(kind, config.method)][0]
    return label, {"analysis": analysis, "eval_seed": EVAL_SEED, "evaluation": what}


def _positions(gru, module, configs, name: str) -> list[dict]:
    tokens, lengths = data.load(name, size=configs[0].eval_size)
    return [{"positions": r, "eval_set": name} for r in evaluate_positions(gru, module, tokens, lengths)]


def _matched(gru, module, configs, name: str) -> list[dict]:
    tokens, lengths = data.load(name, size=configs[0].eval_size)
    scored, own = evaluate_method(gru, module, tokens, lengths), evaluate_rnn(gru, tokens, lengths)
    return [{"eval_set": name, "examples": len(tokens), "accuracy": s["accuracy"],
             "greedy_accuracy": s["greedy_accuracy"], "floor": s["floor"], "gru_accuracy": o["accuracy"],
             "gru_greedy_accuracy": o["greedy_accuracy"]} for s, o in zip(scored, own)]


SCORERS = {"positions": _positions, "matched": _matched, "positions_length9": _positions}


def get_evaluations(kind: str, gru_configs: list[RNNConfig], configs: list[AnalysisConfig], compute: bool = True,
                    device=None) -> list[dict]:
    """The manifests of one kind of evaluation (``EVALUATIONS``) of one intervention on each of
    ``gru_configs``, results under ``metrics``: from the cache, the missing ones computed now from the
    cached GRUs and interventions (never trained here: ``cache.Missing`` if they are absent);
    ``compute`` False: missing ones raise ``cache.Missing``."""
    kind = stored_as(kind, configs[0].method)

    def evaluate(missing, checkpoint):
        grus, found = [gru_configs[i] for i in missing], [configs[i] for i in missing]
        gru, _ = get_rnns(grus, device, train=False)
        module, _ = get_analyses(grus, found, device, train=False)
        return [{} for _ in missing], SCORERS[kind](gru, module, found, eval_set(kind, found[0].method))
    entries = [evaluation_entry(kind, g, c) for g, c in zip(gru_configs, configs)]
    return [manifest for _, manifest in load_or_compute(kind, entries, evaluate if compute else None)]

"""pyvene glue (the optional extra ``pyvene``: ``pip install -e '.[pyvene]'``): this project's models
and interventions in Stanford's interchange-intervention library.

* ``StateModel``: a trained model of the cache (GRU, LSTM or Elman RNN, a group of one) for pyvene:
  its final state passes through ``state``, an ``nn.Identity`` holding one unit ``[B, 1, S]``,
  the component that pyvene intervenes on; ``forward(tokens, lengths, targets)`` reads ``tokens``
  and returns the logits its own decoder writes from that state, teacher-forced with ``targets``
  (default ``tokens``; an intervention scores the original sequence while reading a corrupted one).
* ``OnionIntervention``: our onion intervention as a source-less, trainable pyvene intervention;
  each example's original token, new token and position come as ``intervention_additional_kwargs``.
  It holds our own ``OnionUnigram``, so it computes exactly what ours does.
* ``linear_from_ours``: a pyvene ``RotatedSpaceIntervention`` model holding a trained linear
  unigram or bigram intervention of ours: its rotation, and one subspace per variable.

pyvene's facts this relies on (0.1.8): a model needs ``config.hidden_size`` and a ``device``; it is
called as ``model(**inputs)``; an intervention's constructor takes keyword arguments only and gets
``embed_dim`` from the component's dimension; a subspace partition entry of two ints is read as a
range [start, end), anything else as a list of indices.
"""
from __future__ import annotations

import importlib.metadata
import time
import types
import warnings

import pyvene as pv
import torch
import torch.nn as nn

from . import cache
from .checkpoint import load_or_compute
from .das import DAS_POSITIONS, PYVENE_VERSION, DASConfig, das_cells, das_entry
from .interventions import LinearBigram, LinearUnigram, OnionUnigram
from .model import RepeatRNN
from .profiles import Profile
from .train import RNNConfig, get_rnn, rnn_entry

if importlib.metadata.version("pyvene") != PYVENE_VERSION:
    warnings.warn(f"pyvene {importlib.metadata.version('pyvene')} is installed; this glue was tested with "
                  f"{PYVENE_VERSION} (pyproject.toml's extra), and das.py keys its results by that version")

COMPONENT = "state"


class StateModel(nn.Module):
    def __init__(self, rnn: RepeatRNN):
        super().__init__()
        if len(getattr(rnn, "configs", [None])) != 1:  # (the hand-built stores of toy.py are one model)
            raise ValueError("StateModel wraps a group of one model (analysis.get_analysis, train.get_rnn)")
        self.rnn, self.state = rnn, nn.Identity()
        self.config = types.SimpleNamespace(hidden_size=rnn.state_size)

    @property
    def device(self) -> torch.device:
        return self.rnn.device

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """tokens, targets [B, T], lengths [B] -> logits [B, T, 30]."""
        h = self.state(self.rnn.encode(tokens[None], lengths[None])[0][:, None])  # [B, 1, S]: one unit
        targets = tokens if targets is None else targets
        return self.rnn.decode(h[:, 0][None], targets[None], lengths=lengths[None])[0]


# where pyvene finds the component of a StateModel, and its width
pv.type_to_module_mapping[StateModel] = {COMPONENT: (COMPONENT, pv.models.constants.CONST_OUTPUT_HOOK)}
pv.type_to_dimension_mapping[StateModel] = {COMPONENT: ("hidden_size",)}


def intervenable(model: StateModel, intervention_type, **options) -> pv.IntervenableModel:
    """``model`` under one pyvene intervention on its state (``options``: the intervention's, e.g.
    ``subspace_partition``)."""
    representation = pv.RepresentationConfig(component=COMPONENT, unit="pos", max_number_of_units=1,
                                             intervention_type=intervention_type, **options)
    return pv.IntervenableModel(pv.IntervenableConfig(representations=[representation]), model)


def the_intervention(model: pv.IntervenableModel):
    """The one intervention of an ``intervenable`` model."""
    (found,) = model.interventions.values()
    return found[0] if isinstance(found, tuple) else found


class OnionIntervention(pv.SourcelessIntervention, pv.TrainableIntervention):
    """h' = h + (tanh E[x] - tanh E[x']) * (g * gamma^p + p * l + b) (interventions.OnionUnigram), with
    ``original`` x, ``replacement`` x' and 0-based ``position`` p, each [B], per example.  (Sourceless
    first: TrainableIntervention's constructor sets ``is_source_constant`` False, and pyvene passes the
    per-example arguments only to an intervention whose source is constant.)"""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.onion = OnionUnigram(int(self.embed_dim), k=1)

    def forward(self, base, source=None, subspaces=None, original=None, replacement=None, position=None, **kwargs):
        return self.onion.repair(base[None], original[None], replacement[None], position[None])[0]

    def load_ours(self, ours: OnionUnigram) -> "OnionIntervention":
        """Take the parameters of a trained onion intervention of ours (a group of one)."""
        self.onion.load_state_dict(ours.state_dict())
        return self


def linear_from_ours(model: StateModel, ours: LinearUnigram | LinearBigram) -> pv.IntervenableModel:
    """``model`` under pyvene's RotatedSpaceIntervention holding our trained linear intervention (a
    group of one): pyvene rotates a state as ``h @ W`` and we as ``R h``, so ``W = R^T``, with its
    columns ordered by the variable that owns them (our argmax assignment) so that variable v owns
    one range of rotated coordinates, subspace v; the coordinates owned by no variable come last,
    in no subspace."""
    ours = ours.eval()
    R = ours.patch.rotation.weight[0].detach()
    owner = ours.patch.assignment()[0].argmax(-1)  # [S]: variable, or n_variables for none
    order = torch.argsort(owner, stable=True)
    counts = torch.bincount(owner, minlength=ours.patch.n_variables + 1).tolist()
    starts = [sum(counts[:v]) for v in range(ours.patch.n_variables + 1)]
    partition = [[starts[v], starts[v] + counts[v]] for v in range(ours.patch.n_variables)]
    wrapped = intervenable(model, pv.RotatedSpaceIntervention, subspace_partition=partition)
    with torch.no_grad():
        the_intervention(wrapped).rotate_layer.weight = R.T[:, order].contiguous()
    return wrapped


# --- pyvene's own distributed alignment search, one position at a time (das.py: configs, cache) ---

def counterfactual(base: torch.Tensor, source: torch.Tensor, position: int) -> torch.Tensor:
    """The sequence a perfect swap of ``position`` makes the base write: its own tokens, the source's at p."""
    target = base.clone()
    target[:, position] = source[:, position]
    return target


def train_das(gru: RepeatRNN, config: DASConfig) -> tuple[dict, dict]:
    """Train and evaluate pyvene's DAS (``DASConfig``) on a frozen GRU (a group of one): the
    intervention's state and its metrics (teacher-forced exact match of the counterfactual on the
    evaluation pairs, ``floor`` the same without the intervention, ``seconds_per_step``)."""
    from . import data
    torch.manual_seed(config.seed)
    model = intervenable(StateModel(gru), pv.LowRankRotatedSpaceIntervention, low_rank_dimension=config.rank)
    model.disable_model_gradients()
    optimizer = torch.optim.Adam(model.get_trainable_parameters(), lr=config.lr)
    tokens, _ = data.load("intervention_train")
    generator = torch.Generator().manual_seed(config.seed)
    nine = torch.full((config.batch_size,), 9)
    start = time.time()
    for _ in range(config.steps):
        base, source = (tokens[torch.randint(len(tokens), (config.batch_size,), generator=generator)].long()
                        for _ in range(2))
        target = counterfactual(base, source, config.position)
        _, logits = model({"tokens": base, "lengths": nine, "targets": target},
                          [{"tokens": source, "lengths": nine}], unit_locations={"sources->base": 0})
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.time() - start
    evaluation, _ = data.load("intervention")
    base, source = (evaluation[i * config.eval_size:(i + 1) * config.eval_size].long() for i in range(2))
    target, lengths = counterfactual(base, source, config.position), torch.full((config.eval_size,), 9)
    with torch.no_grad():
        _, logits = model({"tokens": base, "lengths": lengths, "targets": target},
                          [{"tokens": source, "lengths": lengths}], unit_locations={"sources->base": 0})
        plain = StateModel(gru)(base, lengths, target)
    exact = lambda out: (out.argmax(-1) == target).all(-1).float().mean().item()
    state = {k: v.detach().clone() for k, v in the_intervention(model).state_dict().items()}
    return state, {"accuracy": exact(logits), "floor": exact(plain), "final_loss": loss.item(),
                   "seconds_per_step": seconds / config.steps, "position": config.position, "rank": config.rank}


def get_das(gru: RNNConfig, config: DASConfig, compute: bool = True) -> dict:
    """The manifest of one DAS run: from the cache, or trained now on the cached GRU (pyvene needed;
    never trains the GRU); ``compute`` False: a missing one raises ``cache.Missing``."""

    def train(missing, checkpoint):
        model, _ = get_rnn(gru, device="cpu", train=False)
        state, metrics = train_das(model, config)
        return [state], [metrics]
    (found,) = load_or_compute("das", [das_entry(gru, config)], train if compute else None)
    return found[1]


def run_das(profiles: list[Profile], positions=DAS_POSITIONS) -> list[str]:
    """Every DAS run of ``profiles`` (``das_cells`` x ``positions``) whose GRU is cached and result is
    not, smallest GRU first; one line per run."""
    lines, todo, keys = [], [], set()
    for profile in profiles:
        for gru in das_cells(profile):
            for p in positions:
                label, config = das_entry(gru, DASConfig.of(gru, p))
                key = cache.entry_key(label, config)
                if (cache.state("gru", *rnn_entry(gru)) == cache.DONE and not cache.is_done("das", label, config)
                        and key not in keys):
                    todo.append((gru, p))
                    keys.add(key)
    for gru, p in sorted(todo, key=lambda t: t[0].model_config.state_size):
        m = get_das(gru, DASConfig.of(gru, p))["metrics"]
        lines.append(f"{gru.label} position {p}: pyvene DAS {m['accuracy']:.3f} (floor {m['floor']:.3f}, "
                     f"{m['seconds_per_step']:.3f} s a step)")
        print(lines[-1], flush=True)
    return lines

"""Interchange interventions on the GRU's stored state h (authors_implementation.md section 4.1-4.2).

Each method draws a corruption of the input, encodes it with the frozen GRU, edits the encoded state
with learned parameters, and lets the frozen GRU decode the edited state.  The method succeeds on an
example when the decoder writes the *original*, uncorrupted sequence.

* Linear (DAS-style): a learned rotation R; each rotated coordinate is assigned to one of K variables
  or to "none"; the coordinates of the intervened variables are copied from a source state.
  - unigram: K = 9 positions, examples swap tokens pairwise at random positions;
  - bigram: K = 8 adjacent pairs, one corrupted position, source shares tokens p-1, p, p+1.
* Onion: h' = h + (tanh E[x] - tanh E[x']) * (g * gamma^p + p * l + b), no rotation, no subspace.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import orthogonal

from .data import N_SYMBOLS
from .layers import GroupLinear, gather_rows, take
from .model import RepeatRNN


def random_tokens(shape, generator, device) -> torch.Tensor:
    return torch.randint(0, N_SYMBOLS, shape, generator=generator).to(device)


def per_member(corrupt, x, lengths, generators, position=None):
    """Run ``corrupt(x[k], lengths[k], generators[k], position)`` for each member and stack the
    results: each member draws its corruptions from its own generator, as it would alone."""
    parts = [corrupt(x[k], lengths[k], g, position) for k, g in enumerate(generators)]
    return tuple(torch.stack(p) for p in zip(*parts))


class _Intervention(nn.Module):
    """The frozen GRU's own decoder reads the (patched) state.  ``state(..., position=p)`` corrupts
    position p of every example instead of the positions its training draws (``analysis.evaluate_positions``:
    the examples must all be longer than p)."""
    rotated = False  # whether it has a rotation, and so takes an ``orthogonal_map``

    def readout(self, gru: RepeatRNN, h, targets, lengths=None):
        return gru.decode(h, targets, lengths=lengths)

    def generate(self, gru: RepeatRNN, h, steps: int):
        return gru.generate(h, steps)


# How R is parametrized (torch's ``orthogonal``): the matrix exponential (torch's default, every shipped
# entry) or the Cayley map, which costs one linear solve instead of a matrix exponential: 14x less for
# the weight's forward and backward at N = 1024 (docs/performance.md).  Either way R starts as the same
# matrix, nn.Linear's initialisation orthogonalised (torch keeps it as the base of the trivialization).
ORTHOGONAL_MAPS = ("matrix_exp", "cayley")


class RotatedSubspacePatch(nn.Module):
    """u = R h; coordinate c of u is taken from the source state when its variable is intervened on;
    h' = R^T u'.  Assignments are hard straight-through Gumbel-softmax in training, argmax in eval."""

    def __init__(self, hidden_size: int, n_variables: int, k: int = 1, reg_scale: float = 0.001,
                 orthogonal_map: str = "matrix_exp"):
        super().__init__()
        self.n_variables, self.reg_scale = n_variables, reg_scale
        self.rotation = orthogonal(GroupLinear(hidden_size, hidden_size, k, bias=False), orthogonal_map=orthogonal_map)
        self.mask_logits = nn.Parameter(0.01 * torch.randn(k, hidden_size, n_variables + 1))

    def assignment(self, generators=None) -> torch.Tensor:
        """[K, H, V+1] one-hot rows: which variable (or the last column, none) owns each coordinate.
        In training: hard straight-through Gumbel-softmax (tau 1), each member's noise drawn from its
        own generator, so that a member draws the same noise in any group."""
        logits = self.mask_logits
        if not self.training:
            return F.one_hot(logits.argmax(-1), self.n_variables + 1).to(logits.dtype)
        noise = torch.stack([torch.empty(logits.shape[1:]).exponential_(generator=g) for g in generators])
        soft = torch.softmax(logits - noise.log().to(logits), -1)
        hard = F.one_hot(soft.argmax(-1), self.n_variables + 1).to(logits.dtype)
        return hard - soft.detach() + soft

    def forward(self, base: torch.Tensor, source: torch.Tensor, intervene: torch.Tensor,
                generators=None) -> torch.Tensor:
        """base, source: [K, B, H]; intervene: [K, B, V] bool, which variables come from the source;
        ``generators``: one per member, for the Gumbel noise in training."""
        R = self.rotation.weight
        u_base, u_source = torch.bmm(base, R.mT), torch.bmm(source, R.mT)
        assignment = self.assignment(generators)[..., :self.n_variables]
        from_source = torch.bmm(intervene.to(base.dtype), assignment.mT)  # [K, B, H], 0/1
        return torch.bmm(u_base + from_source * (u_source - u_base), R)

    def regularizer(self) -> torch.Tensor:
        """[K]: pushes coordinates towards "none", i.e. towards small variable subspaces"""
        V = self.n_variables
        return self.reg_scale * (self.mask_logits[..., :V].mean((1, 2)) - self.mask_logits[..., V].mean(1))


class LinearUnigram(_Intervention):
    """K = 9 position variables; random pairs of examples swap tokens at each position with p = 0.5."""
    train_set, eval_sets = "intervention_train", ("intervention",)
    chance = ((1 + 1 / N_SYMBOLS) / 2) ** 9
    rotated = True

    def __init__(self, hidden_size: int, k: int = 1, max_len: int = 9, orthogonal_map: str = "matrix_exp"):
        super().__init__()
        self.patch = RotatedSubspacePatch(hidden_size, max_len, k, orthogonal_map=orthogonal_map)

    @staticmethod
    def corrupt(x, lengths, generator, position=None):
        """One member's batch: x [B, T], lengths [B]; ``position``: swap that position alone."""
        B, T = x.shape
        assert B % 2 == 0, "pairing needs an even batch"
        perm = torch.randperm(B, generator=generator)
        partner = torch.empty(B, dtype=torch.long)
        partner[perm[0::2]], partner[perm[1::2]] = perm[1::2], perm[0::2]
        chosen = (torch.rand(B, T, generator=generator) < 0.5 if position is None else
                  (torch.arange(T) == position).expand(B, T).clone())
        chosen[perm[1::2]] = chosen[perm[0::2]]  # a pair swaps the same positions
        min_len = torch.minimum(lengths.cpu(), lengths.cpu()[partner])
        chosen &= torch.arange(T)[None] < min_len[:, None]
        partner, chosen = partner.to(x.device), chosen.to(x.device)
        corrupted = torch.where(chosen, x[partner], x)
        return corrupted, partner, chosen

    def state(self, gru: RepeatRNN, x, lengths, generators, patch: bool = True, position=None):
        corrupted, partner, chosen = per_member(self.corrupt, x, lengths, generators, position)
        with torch.no_grad():
            h = gru.encode(corrupted, lengths)
        # the partner's corrupted input holds this example's original tokens at the chosen positions
        return self.patch(h, take(h, partner), chosen, generators) if patch else h

    def regularizer(self):
        return self.patch.regularizer()


class LinearBigram(_Intervention):
    """K = 8 variables, one per adjacent pair (k, k+1).  One position p is corrupted; the variables
    touching p (k = p-1, p) are taken from a source that shares tokens p-1, p, p+1."""
    train_set, eval_sets = "intervention_train", ("intervention",)
    chance = 1 / N_SYMBOLS
    rotated = True

    def __init__(self, hidden_size: int, k: int = 1, max_len: int = 9, orthogonal_map: str = "matrix_exp"):
        super().__init__()
        self.n_variables = max_len - 1
        self.patch = RotatedSubspacePatch(hidden_size, self.n_variables, k, orthogonal_map=orthogonal_map)

    def corrupt(self, x, lengths, generator, position=None):
        """One member's batch: x [B, T], lengths [B]; ``position``: the corrupted position of all."""
        B, T = x.shape
        p = (torch.rand(B, generator=generator) * lengths.cpu()).long()
        if position is not None:
            p = torch.full_like(p, position)
        pos = torch.arange(T)[None]
        corrupted = torch.where(pos == p[:, None], random_tokens((B, T), generator, "cpu"), x.cpu())
        keep = (pos - p[:, None]).abs() <= 1
        source = torch.where(keep, x.cpu(), random_tokens((B, T), generator, "cpu"))
        v = torch.arange(self.n_variables)[None]
        intervene = (v == p[:, None] - 1) | (v == p[:, None])  # p = 8 touches only variable 7
        return corrupted.to(x.device), source.to(x.device), intervene.to(x.device)

    def state(self, gru: RepeatRNN, x, lengths, generators, patch: bool = True, position=None):
        corrupted, source, intervene = per_member(self.corrupt, x, lengths, generators, position)
        with torch.no_grad():
            h = gru.encode(torch.cat([corrupted, source], 1), torch.cat([lengths, lengths], 1))
        base, src = h.chunk(2, 1)
        return self.patch(base, src, intervene, generators) if patch else base

    def regularizer(self):
        return self.patch.regularizer()


class OnionScale(nn.Module):
    """s(p) = g * gamma^p + p * l + b, one value per state dimension and 0-based position p."""

    def __init__(self, hidden_size: int, l_init: float, k: int = 1):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((k, hidden_size), 0.9))
        self.g = nn.Parameter(torch.ones(k, hidden_size))
        self.b = nn.Parameter(torch.zeros(k, hidden_size))
        self.l = nn.Parameter(torch.full((k, hidden_size), l_init))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """p [K, B] -> [K, B, H]"""
        p = p.to(self.g.dtype)[..., None]
        g, gamma, l, b = (v[:, None] for v in (self.g, self.gamma, self.l, self.b))
        return g * gamma ** p + p * l + b


class OnionUnigram(_Intervention):
    """One position per example gets a random token (which may equal the original); the state is
    repaired by adding back the original token's embedding at that position's magnitude."""
    train_set, eval_sets = "train", ("valid", "valid_rep_3", "valid_norep_3")
    chance = 1 / N_SYMBOLS

    def __init__(self, hidden_size: int, k: int = 1):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(k, N_SYMBOLS, hidden_size))
        self.scale = OnionScale(hidden_size, l_init=1.0, k=k)

    def repair(self, h, original, replacement, p):
        E = torch.tanh(self.embedding)
        return h + (gather_rows(E, original) - gather_rows(E, replacement)) * self.scale(p)

    @staticmethod
    def corrupt(x, lengths, generator, position=None):
        """One member's batch: a random position of each sequence (or ``position``) gets a random token."""
        B = len(x)
        p = (torch.rand(B, generator=generator) * lengths.cpu()).long().to(x.device)
        if position is not None:
            p = torch.full_like(p, position)
        new = random_tokens((B,), generator, x.device)
        rows = torch.arange(B, device=x.device)
        corrupted = x.clone()
        corrupted[rows, p] = new
        return corrupted, x[rows, p], new, p

    def state(self, gru: RepeatRNN, x, lengths, generators, patch: bool = True, position=None):
        corrupted, original, new, p = per_member(self.corrupt, x, lengths, generators, position)
        with torch.no_grad():
            h = gru.encode(corrupted, lengths)
        return self.repair(h, original, new, p) if patch else h

    def regularizer(self):
        return self.embedding.new_zeros(len(self.embedding))


INTERVENTIONS = {"linear_unigram": LinearUnigram, "linear_bigram": LinearBigram, "onion_unigram": OnionUnigram}

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
from .model import RepeatGRU


def random_tokens(shape, generator, device) -> torch.Tensor:
    return torch.randint(0, N_SYMBOLS, shape, generator=generator).to(device)


class _Intervention(nn.Module):
    """The frozen GRU's own decoder reads the (patched) state."""

    def readout(self, gru: RepeatGRU, h, targets, lengths=None):
        return gru.decode(h, targets, lengths=lengths)

    def generate(self, gru: RepeatGRU, h, steps: int):
        return gru.generate(h, steps)


class RotatedSubspacePatch(nn.Module):
    """u = R h; coordinate c of u is taken from the source state when its variable is intervened on;
    h' = R^T u'.  Assignments are hard straight-through Gumbel-softmax in training, argmax in eval."""

    def __init__(self, hidden_size: int, n_variables: int, reg_scale: float = 0.001):
        super().__init__()
        self.n_variables, self.reg_scale = n_variables, reg_scale
        # default map is matrix_exp, so R starts as a random orthogonal matrix
        self.rotation = orthogonal(nn.Linear(hidden_size, hidden_size, bias=False))
        self.mask_logits = nn.Parameter(0.01 * torch.randn(hidden_size, n_variables + 1))

    def assignment(self) -> torch.Tensor:
        """[H, K+1] one-hot rows: which variable (or the last column, none) owns each coordinate."""
        if self.training:
            return F.gumbel_softmax(self.mask_logits, tau=1.0, hard=True)
        return F.one_hot(self.mask_logits.argmax(-1), self.n_variables + 1).to(self.mask_logits.dtype)

    def forward(self, base: torch.Tensor, source: torch.Tensor, intervene: torch.Tensor) -> torch.Tensor:
        """base, source: [B, H]; intervene: [B, K] bool, which variables come from the source."""
        R = self.rotation.weight
        u_base, u_source = base @ R.T, source @ R.T
        take = intervene.to(base.dtype) @ self.assignment()[:, :self.n_variables].T  # [B, H], 0/1
        return (u_base + take * (u_source - u_base)) @ R

    def regularizer(self) -> torch.Tensor:
        # pushes coordinates towards "none", i.e. towards small variable subspaces
        K = self.n_variables
        return self.reg_scale * (self.mask_logits[:, :K].mean() - self.mask_logits[:, K].mean())


class LinearUnigram(_Intervention):
    """K = 9 position variables; random pairs of examples swap tokens at each position with p = 0.5."""
    train_set, eval_sets = "intervention_train", ("intervention",)
    chance = ((1 + 1 / N_SYMBOLS) / 2) ** 9

    def __init__(self, hidden_size: int, max_len: int = 9):
        super().__init__()
        self.patch = RotatedSubspacePatch(hidden_size, max_len)

    def corrupt(self, x, lengths, generator):
        B, T = x.shape
        assert B % 2 == 0, "pairing needs an even batch"
        perm = torch.randperm(B, generator=generator)
        partner = torch.empty(B, dtype=torch.long)
        partner[perm[0::2]], partner[perm[1::2]] = perm[1::2], perm[0::2]
        chosen = torch.rand(B, T, generator=generator) < 0.5
        chosen[perm[1::2]] = chosen[perm[0::2]]  # a pair swaps the same positions
        min_len = torch.minimum(lengths.cpu(), lengths.cpu()[partner])
        chosen &= torch.arange(T)[None] < min_len[:, None]
        partner, chosen = partner.to(x.device), chosen.to(x.device)
        corrupted = torch.where(chosen, x[partner], x)
        return corrupted, partner, chosen

    def state(self, gru: RepeatGRU, x, lengths, generator, patch: bool = True):
        corrupted, partner, chosen = self.corrupt(x, lengths, generator)
        with torch.no_grad():
            h = gru.encode(corrupted, lengths)
        # the partner's corrupted input holds this example's original tokens at the chosen positions
        return self.patch(h, h[partner], chosen) if patch else h

    def regularizer(self):
        return self.patch.regularizer()


class LinearBigram(_Intervention):
    """K = 8 variables, one per adjacent pair (k, k+1).  One position p is corrupted; the variables
    touching p (k = p-1, p) are taken from a source that shares tokens p-1, p, p+1."""
    train_set, eval_sets = "intervention_train", ("intervention",)
    chance = 1 / N_SYMBOLS

    def __init__(self, hidden_size: int, max_len: int = 9):
        super().__init__()
        self.n_variables = max_len - 1
        self.patch = RotatedSubspacePatch(hidden_size, self.n_variables)

    def corrupt(self, x, lengths, generator):
        B, T = x.shape
        p = (torch.rand(B, generator=generator) * lengths.cpu()).long()
        pos = torch.arange(T)[None]
        corrupted = torch.where(pos == p[:, None], random_tokens((B, T), generator, "cpu"), x.cpu())
        keep = (pos - p[:, None]).abs() <= 1
        source = torch.where(keep, x.cpu(), random_tokens((B, T), generator, "cpu"))
        k = torch.arange(self.n_variables)[None]
        intervene = (k == p[:, None] - 1) | (k == p[:, None])  # p = 8 touches only variable 7
        return corrupted.to(x.device), source.to(x.device), intervene.to(x.device)

    def state(self, gru: RepeatGRU, x, lengths, generator, patch: bool = True):
        corrupted, source, intervene = self.corrupt(x, lengths, generator)
        with torch.no_grad():
            h = gru.encode(torch.cat([corrupted, source]), torch.cat([lengths, lengths]))
        base, src = h.chunk(2)
        return self.patch(base, src, intervene) if patch else base

    def regularizer(self):
        return self.patch.regularizer()


class OnionScale(nn.Module):
    """s(p) = g * gamma^p + p * l + b, one value per state dimension and 0-based position p."""

    def __init__(self, hidden_size: int, l_init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((hidden_size,), 0.9))
        self.g = nn.Parameter(torch.ones(hidden_size))
        self.b = nn.Parameter(torch.zeros(hidden_size))
        self.l = nn.Parameter(torch.full((hidden_size,), l_init))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        p = p.to(self.g.dtype)[..., None]
        return self.g * self.gamma ** p + p * self.l + self.b


class OnionUnigram(_Intervention):
    """One position per example gets a random token (which may equal the original); the state is
    repaired by adding back the original token's embedding at that position's magnitude."""
    train_set, eval_sets = "train", ("valid", "valid_rep_3", "valid_norep_3")
    chance = 1 / N_SYMBOLS

    def __init__(self, hidden_size: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(N_SYMBOLS, hidden_size))
        self.scale = OnionScale(hidden_size, l_init=1.0)

    def repair(self, h, original, replacement, p):
        E = torch.tanh(self.embedding)
        return h + (E[original] - E[replacement]) * self.scale(p)

    def state(self, gru: RepeatGRU, x, lengths, generator, patch: bool = True):
        B = len(x)
        p = (torch.rand(B, generator=generator) * lengths.cpu()).long().to(x.device)
        new = random_tokens((B,), generator, x.device)
        rows = torch.arange(B, device=x.device)
        original = x[rows, p]
        corrupted = x.clone()
        corrupted[rows, p] = new
        with torch.no_grad():
            h = gru.encode(corrupted, lengths)
        return self.repair(h, original, new, p) if patch else h

    def regularizer(self):
        return torch.zeros(())


INTERVENTIONS = {"linear_unigram": LinearUnigram, "linear_bigram": LinearBigram, "onion_unigram": OnionUnigram}

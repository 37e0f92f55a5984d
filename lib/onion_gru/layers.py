"""Layers of K models at once: every weight has a leading model axis and every activation a leading
[K, ...] axis, so one kernel serves the whole group (packed.py says why that matters here).

Names and initial values are those of the ``torch.nn`` layer each replaces (``weight``, ``bias``;
PyTorch's default initialisation drawn in its order), so a member's state dict is the one a single
``nn`` model would have: ``member_state`` takes it out of a group and ``stack_states`` puts members
back together.  A group is initialised member by member, each under its own seed (``from_members``),
so a model's initial weights do not depend on the group it runs in.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class GroupLinear(nn.Module):
    """``nn.Linear`` for K models: [K, ..., in] -> [K, ..., out]."""

    def __init__(self, in_features: int, out_features: int, k: int = 1, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(k, out_features)) if bias else None
        bound = 1 / math.sqrt(in_features)  # nn.Linear's kaiming_uniform_(a=sqrt(5)) and bias bound
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        out = torch.bmm(flat, self.weight.mT) if self.bias is None else torch.baddbmm(self.bias[:, None], flat, self.weight.mT)
        return out.view(*x.shape[:-1], -1)


class GroupEmbedding(nn.Module):
    """``nn.Embedding`` for K models (N(0, 1) rows): ids [K, ...] -> [K, ..., H].  ``rows[k]``: member
    k draws only its first rows[k] rows, the rest of its table is 0 (members of different vocabularies)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, k: int = 1, rows: list[int] | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(k, num_embeddings, embedding_dim))
        with torch.no_grad():
            for member, n in enumerate(rows or [num_embeddings] * k):
                self.weight[member, :n] = torch.randn(n, embedding_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return gather_rows(self.weight, ids)


class GroupLayerNorm(nn.Module):
    """``nn.LayerNorm`` over the last axis for K models (weight 1, bias 0)."""

    def __init__(self, size: int, k: int = 1, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(k, size))
        self.bias = nn.Parameter(torch.zeros(k, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        normed = F.layer_norm(x, x.shape[-1:], eps=self.eps)
        return torch.addcmul(self.bias.view(shape), normed, self.weight.view(shape))


def gather_rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``table[k][ids[k]]`` for every member k: table [K, V, H], ids [K, ...] -> [K, ..., H].
    Through F.embedding: its CPU backward sums repeated rows in a fixed order (indexing's
    backward, index_put_ with accumulate, does not: the gradient changed from run to run)."""
    K, V = table.shape[:2]
    offsets = torch.arange(K, device=ids.device).view(K, *(1,) * (ids.dim() - 1)) * V
    return F.embedding(ids.long() + offsets, table.flatten(0, 1))


def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[k][index[k]]`` along axis 1 for every member: x [K, B, ...], index [K, B'] -> [K, B', ...]."""
    return x.gather(1, index.view(*index.shape, *(1,) * (x.dim() - 2)).expand(*index.shape, *x.shape[2:]))


def group_size(module: nn.Module) -> int:
    """K of a group module: every parameter's leading axis."""
    return next(module.parameters()).shape[0]


def member_state(state: dict, k: int) -> dict:
    """Member k's state dict out of a group's."""
    return {name: v[k].clone() for name, v in state.items()}


def stack_states(states: list[dict]) -> dict:
    """A group's state dict from its members' (the inverse of ``member_state``)."""
    return {name: torch.stack([s[name] for s in states]) for name in states[0]}


def from_members(make: Callable[[list[int]], nn.Module], seeds) -> nn.Module:
    """``make(members)`` builds a group of the given member indices.  Returns the group of all
    len(seeds) members, member k initialised as ``make([k])`` is under ``torch.manual_seed(seeds[k])``."""
    states = []
    for k, seed in enumerate(seeds):
        torch.manual_seed(seed)
        states.append(member_state(make([k]).state_dict(), 0))
    group = make(list(range(len(states))))
    group.load_state_dict(stack_states(states))
    return group

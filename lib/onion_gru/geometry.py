"""How the stored state changes when one token changes: the onion idea, measured.

For base sequences of one length, the token at position p is changed from a to b (the same a -> b at
every position, on the same base).  A linear, position-wise store moves h along a different direction
for each position; an onion store moves it along the *same* direction, with a magnitude that depends
on the position.  ``change_vectors`` returns those state changes; ``cross_position_cosine`` and
``change_norms`` summarise them.
"""
from __future__ import annotations

import torch

from .data import N_SYMBOLS


@torch.no_grad()
def change_vectors(model, length: int = 9, n: int = 500, seed: int = 0) -> torch.Tensor:
    """[length, n, H]: h(base with x_p := b) - h(base with x_p := a), for the same random a != b
    and base per example, at every position p, of a single model (a group of one)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, N_SYMBOLS, (n, length), generator=g)
    a = torch.randint(0, N_SYMBOLS, (n,), generator=g)
    b = (a + torch.randint(1, N_SYMBOLS, (n,), generator=g)) % N_SYMBOLS  # b != a
    lengths = torch.full((1, n), length, device=model.device)
    out = []
    for p in range(length):
        with_a, with_b = base.clone(), base.clone()
        with_a[:, p], with_b[:, p] = a, b
        out.append((model.encode(with_b[None].to(model.device), lengths)
                    - model.encode(with_a[None].to(model.device), lengths))[0].cpu())
    return torch.stack(out)


def cross_position_cosine(deltas: torch.Tensor) -> torch.Tensor:
    """[P, P]: mean over examples of cos(delta_p, delta_q).  Near 0 off the diagonal for separate
    subspaces per position; near 1 for one shared direction per token change (onion)."""
    unit = deltas / deltas.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("pnh,qnh->pqn", unit, unit).mean(-1)


def change_norms(deltas: torch.Tensor) -> torch.Tensor:
    """[P, n]: the size of the state change per position (the onion's layer magnitude)."""
    return deltas.norm(dim=-1)

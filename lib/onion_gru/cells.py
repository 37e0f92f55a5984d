"""The recurrent cells a repeat model can use: the GRU (packed.py, the paper's cell), and for the
cell comparison (notebook 07) an Elman RNN (``nn.RNN`` with tanh) and an LSTM (``nn.LSTM``).

Every cell has ``GroupGRU``'s interface (``packed.CellWeights``: the weights, ``project``, the
input projection outside the recurrence, ``state_size`` and ``output``; and ``forward(gi, packing,
h0, final)`` over packed rows), so the model, the training loop, the cache and all eight methods run
unchanged on any of them.

The *state* is what the encoder hands the decoder, and what every intervention and probe acts on:
h for the GRU and the Elman RNN; for the LSTM the pair (h, c), concatenated as [h, c] (2H wide).
The LSTM's decoder continues from both, so an edit of h alone would leave c holding the tokens and
the decoder could restore them from it: an intervention on h would then measure the cell, not the
storage.  The output layer reads h (``output``).

The Elman and LSTM recurrences are plain autograd over the packed rows, not a hand-written backward
like the GRU's: they run for one comparison, not for the whole pipeline, and are about 1.5-2x
slower per step.  Names and initialisation are ``nn.RNN``'s and ``nn.LSTM``'s (U(+-1/sqrt(H)) in
their order; LSTM gate order i, f, g, o); tests/test_cells.py checks values and gradients against them.
"""
from __future__ import annotations

import torch

from .packed import CellWeights, GroupGRU, Packing


class _PackedCell(CellWeights):
    gates = 1

    def forward(self, gi: torch.Tensor, packing: Packing, h0: torch.Tensor | None = None,
                final: bool = False) -> torch.Tensor:
        """As ``GroupGRU.forward``: packed states [K, S, state_size], or with ``final`` each
        sequence's state after its last step, [K, B, state_size]."""
        K, B, _ = packing.shape
        s = gi.new_zeros(K, B, self.state_size) if h0 is None else h0
        s = s.gather(1, packing.order[..., None].expand(K, B, self.state_size))  # longest first
        w_hh_t, b_hh = self.weight_hh_l0.mT, self.bias_hh_l0[:, None]
        out = []
        for gi_t, size in zip(gi.split(packing.sizes, 1), packing.sizes):
            s = self.step(gi_t + torch.baddbmm(b_hh, s[:, :size, :self.hidden_size], w_hh_t), s[:, :size])
            out.append(s)
        states = torch.cat(out, 1)
        return states.gather(1, packing.last[..., None].expand(K, B, self.state_size)) if final else states


class GroupElman(_PackedCell):
    """K Elman RNNs: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""

    def step(self, pre: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(pre)


class GroupLSTM(_PackedCell):
    """K LSTMs; the state is [h, c]."""
    gates, width = 4, 2

    def step(self, pre: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        i, f, g, o = pre.chunk(4, -1)
        c = torch.sigmoid(f) * s[..., self.hidden_size:] + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], -1)


CELLS = {"gru": GroupGRU, "lstm": GroupLSTM, "elman": GroupElman}

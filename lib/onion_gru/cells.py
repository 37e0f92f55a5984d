"""The recurrent cells a repeat model can use: the GRU (packed.py, the paper's cell); for the cell
comparison (notebook 07) an Elman RNN (``nn.RNN`` with tanh) and an LSTM (``nn.LSTM``); and three
cells whose gates see the input only (issue 49: can a cell build an onion when its gates cannot see
the state?):

* ``gru_input_gates``: the GRU with the recurrent weights of its reset and update gates removed,
  r, z = sigma(W_i x + b_i); its candidate still reads r * (W_hn h + b_hn).  One mechanism ablated.
* ``mingru`` (Feng et al. 2024, "Were RNNs all we needed?", sequential mode):
  z = sigma(W_z x + b_z), h~ = W_h x + b_h, h' = (1 - z) h + z h~.
* ``minlstm`` (ibid.): f, i = sigma(W_f x + b_f), sigma(W_i x + b_i), normalised to f / (f + i) and
  i / (f + i); h~ = W_h x + b_h; h' = f' h + i' h~.
The last two have no recurrent weights at all: the state is a gated running average of the inputs'
projections.  Evaluated step by step; a parallel scan would only change the speed.

Every cell has ``GroupGRU``'s interface (``packed.CellWeights``: the weights, ``project``, the
input projection outside the recurrence, ``state_size`` and ``output``; and ``forward(gi, packing,
h0, final)`` over packed rows), so the model, the training loop, the cache and all eight methods run
unchanged on any of them.  ``write`` is a gated cell's write strength, the share of the new input
in each unit of the state (notebook 03's schedule, internals.write_schedule).

The *state* is what the encoder hands the decoder, and what every intervention and probe acts on:
h for all but the LSTM; for the LSTM the pair (h, c), concatenated as [h, c] (2H wide).
The LSTM's decoder continues from both, so an edit of h alone would leave c holding the tokens and
the decoder could restore them from it: an intervention on h would then measure the cell, not the
storage.  The output layer reads h (``output``).

These recurrences are plain autograd over the packed rows, not a hand-written backward like the
GRU's: they run for comparisons, not for the whole pipeline, and are about 1.5-2x slower per step.
Names and initialisation are ``nn.RNN``'s and ``nn.LSTM``'s (U(+-1/sqrt(H)) in their order; LSTM
gate order i, f, g, o); tests/test_cells.py checks values and gradients against them, and the three
input-gated cells against float64 formulas written out one step at a time.
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
        out = []
        for gi_t, size in zip(gi.split(packing.sizes, 1), packing.sizes):
            s = self.step(gi_t, s[:, :size])
            out.append(s)
        states = torch.cat(out, 1)
        return states.gather(1, packing.last[..., None].expand(K, B, self.state_size)) if final else states


class GroupElman(_PackedCell):
    """K Elman RNNs: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""

    def step(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(gi + self.recurrent(s))


class GroupLSTM(_PackedCell):
    """K LSTMs; the state is [h, c]."""
    gates, width = 4, 2

    def step(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        i, f, g, o = (gi + self.recurrent(s)).chunk(4, -1)
        c = torch.sigmoid(f) * s[..., self.hidden_size:] + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], -1)

    def write(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The input gate: how much of the candidate enters the cell c."""
        return torch.sigmoid((gi + self.recurrent(s))[..., :self.hidden_size])


class GroupGRUInputGates(_PackedCell):
    """K GRUs whose reset and update gates see the input only (weight_hh: the candidate's H rows)."""
    gates, recurrent_gates = 3, 1

    def step(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        r, z, n = gi.chunk(3, -1)
        n = torch.tanh(n + torch.sigmoid(r) * self.recurrent(s))
        z = torch.sigmoid(z)
        return (1 - z) * n + z * s

    def write(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return 1 - torch.sigmoid(gi.chunk(3, -1)[1])


class GroupMinGRU(_PackedCell):
    """K minGRUs: no recurrent weights; gate z and candidate h~ from the input."""
    gates, recurrent_gates = 2, 0

    def step(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        z, candidate = gi.chunk(2, -1)
        z = torch.sigmoid(z)
        return (1 - z) * s + z * candidate

    def write(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(gi.chunk(2, -1)[0])


class GroupMinLSTM(_PackedCell):
    """K minLSTMs: no recurrent weights; forget and input gates normalised to sum to 1."""
    gates, recurrent_gates = 3, 0

    def step(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        i = self.write(gi, s)
        return (1 - i) * s + i * gi.chunk(3, -1)[2]

    def write(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """i' = i / (f + i) = sigma(a_i) / (sigma(a_f) + sigma(a_i)); f' = 1 - i'."""
        f, i, _ = gi.chunk(3, -1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        return i / (f + i)


CELLS = {"gru": GroupGRU, "lstm": GroupLSTM, "elman": GroupElman, "gru_input_gates": GroupGRUInputGates,
         "mingru": GroupMinGRU, "minlstm": GroupMinLSTM}

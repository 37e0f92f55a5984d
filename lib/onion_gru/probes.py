"""Probes that read the whole sequence out of the frozen GRU's final state h
(authors_implementation.md section 4.3).  Each maps ``(h [B, H], targets [B, T])`` to logits
``[B, T, 30]`` with teacher forcing, and ``generate(h, T)`` decodes free-running.

* linear: one affine map to 9 x 30 logits, all positions at once;
* mlp: H -> H -> 9 x 30 with a ReLU;
* onion: autoregressive peeling, classify LayerNorm(h), then subtract E[y_p] * s(p) (no tanh, l = 0.1);
* gru_ar / gru_no_input: a fresh GRU decoder started from h, fed the previous token or zeros.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .data import N_SYMBOLS
from .packed import GroupGRU, Packing
from .interventions import OnionScale
from .layers import GroupEmbedding, GroupLayerNorm, GroupLinear, gather_rows, group_size
from .model import SOS, RepeatRNN

MAX_LEN = 9


class _ProbeBase(nn.Module):
    train_set, eval_sets = "train", ("valid",)
    chance = 0.0  # guessing a whole sequence of 2-9 tokens
    rotated = False  # no rotation (interventions.RotatedSubspacePatch)

    def state(self, gru: RepeatRNN, x, lengths, generators, patch: bool = True):
        with torch.no_grad():
            return gru.encode(x, lengths)

    def regularizer(self):
        return torch.zeros(group_size(self), device=next(self.parameters()).device)

    def readout(self, gru, h, targets, lengths=None):  # lengths: see RepeatRNN.decode
        return self(h, targets)

    def generate(self, gru, h, steps: int) -> torch.Tensor:
        return self(h, h.new_zeros(*h.shape[:2], steps, dtype=torch.long)).argmax(-1)


class LinearProbe(_ProbeBase):
    def __init__(self, hidden_size: int, k: int = 1, hidden_layer: bool = False):
        super().__init__()
        out = GroupLinear(hidden_size, MAX_LEN * N_SYMBOLS, k)
        self.net = nn.Sequential(GroupLinear(hidden_size, hidden_size, k), nn.ReLU(), out) if hidden_layer else out

    def forward(self, h, targets):
        return self.net(h).view(*h.shape[:2], MAX_LEN, N_SYMBOLS)[:, :, :targets.shape[-1]]


class MLPProbe(LinearProbe):
    def __init__(self, hidden_size: int, k: int = 1):
        super().__init__(hidden_size, k, hidden_layer=True)


class OnionProbe(_ProbeBase):
    def __init__(self, hidden_size: int, k: int = 1):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(k, N_SYMBOLS, hidden_size))
        self.norm = GroupLayerNorm(hidden_size, k)
        self.classifier = nn.Sequential(GroupLinear(hidden_size, hidden_size, k), nn.ReLU(),
                                        GroupLinear(hidden_size, N_SYMBOLS, k))
        self.scale = OnionScale(hidden_size, l_init=0.1, k=k)

    def forward(self, h, targets, free_running: bool = False):
        logits = []
        for p in range(targets.shape[-1]):
            logits.append(self.classifier(self.norm(h)))
            token = logits[-1].argmax(-1) if free_running else targets[..., p].long()
            h = h - gather_rows(self.embedding, token) * self.scale(torch.full(h.shape[:2], p, device=h.device))
        return torch.stack(logits, 2)

    def generate(self, gru, h, steps):
        return self(h, h.new_zeros(*h.shape[:2], steps, dtype=torch.long), free_running=True).argmax(-1)


class GRUProbe(_ProbeBase):
    def __init__(self, hidden_size: int, k: int = 1, autoregressive: bool = True):
        super().__init__()
        self.autoregressive = autoregressive
        self.embedding = GroupEmbedding(N_SYMBOLS + 1, hidden_size, k)
        self.rnn = GroupGRU(hidden_size, hidden_size, k)
        self.fc = GroupLinear(hidden_size, N_SYMBOLS, k)

    def _projected(self, tokens):
        """The GRU's input projection of the previous tokens [K, ...], or with no input (zeros) its bias."""
        if self.autoregressive:
            return gather_rows(self.rnn.project(self.embedding.weight), tokens)
        bias = self.rnn.bias_ih_l0
        return bias.view(len(bias), *(1,) * (tokens.dim() - 1), -1).expand(*tokens.shape, -1)

    def forward(self, h, targets):
        sos = torch.full((*h.shape[:2], 1), SOS, dtype=torch.long, device=h.device)
        prev = torch.cat([sos, targets[..., :-1].long()], 2)
        packing = Packing.of(None, *prev.shape, device=h.device)
        return self.fc(packing.unpack(self.rnn(self._projected(packing.pack(prev)), packing, h)))

    def generate(self, gru, h, steps):
        packing = Packing.of(None, *h.shape[:2], 1, device=h.device)
        token = torch.full(h.shape[:2], SOS, dtype=torch.long, device=h.device)
        out = []
        for _ in range(steps):
            h = self.rnn(self._projected(token), packing, h)  # one step: packed rows are the batch
            token = self.fc(h).argmax(-1)
            out.append(token)
        return torch.stack(out, 2)


class GRUNoInputProbe(GRUProbe):
    def __init__(self, hidden_size: int, k: int = 1):
        super().__init__(hidden_size, k, autoregressive=False)


PROBES = {"probe_linear": LinearProbe, "probe_mlp": MLPProbe, "probe_onion": OnionProbe,
          "probe_gru_ar": GRUProbe, "probe_gru_no_input": GRUNoInputProbe}

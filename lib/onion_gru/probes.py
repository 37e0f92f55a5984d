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
from .fastgru import gru_sequence
from .interventions import OnionScale
from .model import SOS, RepeatGRU

MAX_LEN = 9


class _ProbeBase(nn.Module):
    train_set, eval_sets = "train", ("valid",)
    chance = 0.0  # guessing a whole sequence of 2-9 tokens

    def state(self, gru: RepeatGRU, x, lengths, generator, patch: bool = True):
        with torch.no_grad():
            return gru.encode(x, lengths)

    def regularizer(self):
        return torch.zeros(())

    def readout(self, gru, h, targets, lengths=None):  # lengths: see RepeatGRU.decode
        return self(h, targets)

    def generate(self, gru, h, steps: int) -> torch.Tensor:
        return self(h, torch.zeros(len(h), steps, dtype=torch.long, device=h.device)).argmax(-1)


class LinearProbe(_ProbeBase):
    def __init__(self, hidden_size: int, hidden_layer: bool = False):
        super().__init__()
        out = nn.Linear(hidden_size, MAX_LEN * N_SYMBOLS)
        self.net = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), out) if hidden_layer else out

    def forward(self, h, targets):
        return self.net(h).view(len(h), MAX_LEN, N_SYMBOLS)[:, :targets.shape[1]]


class MLPProbe(LinearProbe):
    def __init__(self, hidden_size: int):
        super().__init__(hidden_size, hidden_layer=True)


class OnionProbe(_ProbeBase):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(N_SYMBOLS, hidden_size))
        self.norm = nn.LayerNorm(hidden_size)
        self.classifier = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                                        nn.Linear(hidden_size, N_SYMBOLS))
        self.scale = OnionScale(hidden_size, l_init=0.1)

    def forward(self, h, targets, free_running: bool = False):
        logits = []
        for p in range(targets.shape[1]):
            logits.append(self.classifier(self.norm(h)))
            token = logits[-1].argmax(-1) if free_running else targets[:, p].long()
            h = h - self.embedding[token] * self.scale(torch.full((len(h),), p, device=h.device))
        return torch.stack(logits, 1)

    def generate(self, gru, h, steps):
        return self(h, torch.zeros(len(h), steps, dtype=torch.long, device=h.device), free_running=True).argmax(-1)


class GRUProbe(_ProbeBase):
    def __init__(self, hidden_size: int, autoregressive: bool = True):
        super().__init__()
        self.autoregressive = autoregressive
        self.embedding = nn.Embedding(N_SYMBOLS + 1, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, N_SYMBOLS)

    def _inputs(self, tokens):
        if not self.autoregressive:
            return torch.zeros(*tokens.shape, self.rnn.input_size, device=tokens.device)
        return self.embedding(tokens)

    def forward(self, h, targets):
        sos = torch.full((len(h), 1), SOS, dtype=torch.long, device=h.device)
        prev = torch.cat([sos, targets[:, :-1].long()], 1)
        return self.fc(gru_sequence(self.rnn, self._inputs(prev), h))

    def generate(self, gru, h, steps):
        token = torch.full((len(h), 1), SOS, dtype=torch.long, device=h.device)
        state, out = h[None].contiguous(), []
        for _ in range(steps):
            o, state = self.rnn(self._inputs(token), state)
            token = self.fc(o).argmax(-1)
            out.append(token[:, 0])
        return torch.stack(out, 1)


class GRUNoInputProbe(GRUProbe):
    def __init__(self, hidden_size: int):
        super().__init__(hidden_size, autoregressive=False)


PROBES = {"probe_linear": LinearProbe, "probe_mlp": MLPProbe, "probe_onion": OnionProbe,
          "probe_gru_ar": GRUProbe, "probe_gru_no_input": GRUNoInputProbe}

"""Hand-built storage models with known representations: known answers for the methods and the
onion-geometry notebook.

Both expose the RepeatRNN interface that interventions and probes use: ``encode``, ``decode``
(teacher-forced logits), ``generate`` (free-running), ``state_size`` and ``device``, with the same
leading model axis (tokens [K, B, T], states [K, B, H]); every member is the same fixed store.

* ``LinearStore``: position p's token lives in its own block of coordinates (a code vector per
  token): a linear interchange intervention can swap positions by swapping blocks.
* ``OnionStore``: the authors' fixed-gamma vector sum, h = sum_p gamma^p onehot(x_p): every position
  shares the same 30 directions and is told apart only by its magnitude gamma^p.  The decoder
  classifies the leading term and peels off the emitted token, as an autoregressive GRU would.
"""
from __future__ import annotations

import torch
import torch.nn as nn

N_SYMBOLS, MAX_LEN = 30, 9


class _Store(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = self.state_size = hidden_size
        self.register_buffer("anchor", torch.zeros(1))  # gives the model a device and a state_dict

    @property
    def device(self):
        return self.anchor.device

    def generate(self, h, steps):
        out = []
        for t in range(steps):
            prev = torch.stack(out, -1) if out else torch.zeros(*h.shape[:2], 0, dtype=torch.long)
            padded = torch.cat([prev, torch.zeros(*h.shape[:2], steps - t, dtype=torch.long)], -1)
            out.append(self.decode(h, padded)[:, :, t].argmax(-1))
        return torch.stack(out, -1)


class LinearStore(_Store):
    def __init__(self, code_dim: int = 8, seed: int = 0):
        super().__init__(MAX_LEN * code_dim)
        g = torch.Generator().manual_seed(seed)
        codes = torch.randn(N_SYMBOLS, code_dim, generator=g)
        self.register_buffer("codes", codes / codes.norm(dim=1, keepdim=True))
        self.code_dim = code_dim

    def encode(self, tokens, lengths):
        K, B, T = tokens.shape
        blocks = self.codes[tokens.long()]  # [K, B, T, d]
        blocks = blocks * (torch.arange(T)[:, None] < lengths[..., None, None])
        h = torch.zeros(K, B, MAX_LEN, self.code_dim)
        h[:, :, :T] = blocks
        return h.reshape(K, B, -1)

    def decode(self, h, targets, lengths=None):
        T = targets.shape[-1]
        blocks = h.view(*h.shape[:2], MAX_LEN, self.code_dim)[:, :, :T]
        return 20.0 * blocks @ self.codes.T


class OnionStore(_Store):
    def __init__(self, gamma: float = 0.4):
        super().__init__(N_SYMBOLS)
        self.gamma = gamma

    def encode(self, tokens, lengths):
        T = tokens.shape[-1]
        weights = self.gamma ** torch.arange(T, dtype=torch.float) * (torch.arange(T) < lengths[..., None])
        return (nn.functional.one_hot(tokens.long(), N_SYMBOLS).float() * weights[..., None]).sum(-2)

    def decode(self, h, targets, lengths=None):
        logits = []
        for t in range(targets.shape[-1]):
            logits.append(h * (3.0 / self.gamma ** t))  # argmax picks the leading (largest) layer
            h = h - self.gamma ** t * nn.functional.one_hot(targets[..., t].long(), N_SYMBOLS).float()
        return torch.stack(logits, -2)

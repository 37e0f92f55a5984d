"""The sequence-repeating GRU: one single-layer GRU that first reads the input and then, from its
final state h, writes the input out again.

Reading and generation share the GRU, the embedding and the head (as in the authors' code); it is one
RNN run over [x_1..x_L, SOS, y_1..y_{L-1}] with the loss on the last L steps.  ``encode`` and
``decode`` are separate public steps because every intervention and probe acts on h between them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import N_SYMBOLS
from .fastgru import Packing, gru_packed

SOS = N_SYMBOLS  # start-of-generation token id (30)
NO_INPUT = N_SYMBOLS + 1  # constant decoder input of the "no input" variant (31)
VARIANTS = ("autoregressive", "no_input")


@dataclass(frozen=True)
class ModelConfig:
    hidden_size: int
    variant: str = "autoregressive"  # or "no_input": the decoder sees SOS, then a constant token

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {VARIANTS}")
        if self.hidden_size <= 0:
            raise ValueError(f"hidden_size must be positive, got {self.hidden_size}")


class RepeatGRU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        H = config.hidden_size
        no_input = config.variant == "no_input"
        # PyTorch default initialisation throughout, as the authors: N(0,1) embedding, U(+-1/sqrt(H)) GRU
        self.embedding = nn.Embedding(N_SYMBOLS + 1 + int(no_input), H)
        self.rnn = nn.GRU(H, H, batch_first=True)
        self.fc = nn.Linear(H, N_SYMBOLS)

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Read ``tokens [B, T]``; return each sequence's state after its own last token, ``[B, H]``."""
        if self.device.type == "cpu":  # packed, by hand (fastgru.py says why)
            packing = Packing.of(lengths, *tokens.shape)
            return gru_packed(self.rnn, self.embedding(packing.pack(tokens.long())), packing, final=True)
        # running the padded batch and gathering at length - 1 equals packing (the GRU is causal)
        out, _ = self.rnn(self.embedding(tokens.long()))
        idx = (lengths.long() - 1).to(out.device)
        return out[torch.arange(len(idx), device=out.device), idx]

    def decoder_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """[SOS, y_0, ..., y_{T-2}] (teacher forcing) or [SOS, NI, NI, ...] for the no-input variant."""
        B, T = targets.shape
        sos = torch.full((B, 1), SOS, dtype=torch.long, device=targets.device)
        if self.config.variant == "no_input":
            rest = torch.full((B, T - 1), NO_INPUT, dtype=torch.long, device=targets.device)
        else:
            rest = targets[:, :-1].long()
        return torch.cat([sos, rest], 1)

    def decode(self, h: torch.Tensor, targets: torch.Tensor, return_states: bool = False,
               lengths: torch.Tensor | None = None):
        """Teacher-forced generation from state ``h [B, H]``: logits ``[B, T, 30]`` for T = targets' width.
        Positions past a sequence's length are garbage and must be masked by the caller; given
        ``lengths``, the CPU path does not compute them (they are 0)."""
        inputs = self.decoder_inputs(targets)
        if self.device.type == "cpu":
            packing = Packing.of(lengths, *inputs.shape)
            states = gru_packed(self.rnn, self.embedding(packing.pack(inputs)), packing, h)
            logits = packing.unpack(self.fc(states))
            return (logits, packing.unpack(states)) if return_states else logits
        states, _ = self.rnn(self.embedding(inputs), h.unsqueeze(0).contiguous())
        logits = self.fc(states)
        return (logits, states) if return_states else logits

    @torch.no_grad()
    def generate(self, h: torch.Tensor, steps: int) -> torch.Tensor:
        """Free-running greedy generation: each step feeds the model's own previous prediction."""
        B = h.shape[0]
        token = torch.full((B,), SOS, dtype=torch.long, device=h.device)
        state, out = h.unsqueeze(0).contiguous(), []
        for t in range(steps):
            step_in = token if (t == 0 or self.config.variant == "autoregressive") else torch.full_like(token, NO_INPUT)
            o, state = self.rnn(self.embedding(step_in)[:, None], state)
            token = self.fc(o[:, 0]).argmax(-1)
            out.append(token)
        return torch.stack(out, 1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, T, 30]``, positions past each length masked by the loss."""
        return self.decode(self.encode(tokens, lengths), tokens, lengths=lengths)


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
                  tokens_per_batch: float | None = None) -> torch.Tensor:
    """Token cross-entropy over all valid tokens of the batch: their mean (the authors' loss), or
    their sum over ``tokens_per_batch``, a constant (see train.LengthBucketSampler)."""
    T = logits.shape[1]
    targets = targets[:, :T].long().to(logits.device)
    mask = torch.arange(T, device=logits.device)[None] < lengths[:, None].to(logits.device)
    reduction = "mean" if tokens_per_batch is None else "sum"
    if bool(mask.all()):  # no padding: skip the boolean gather
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)
    else:
        loss = F.cross_entropy(logits[mask], targets[mask], reduction=reduction)
    return loss if tokens_per_batch is None else loss / tokens_per_batch


def exact_match(predictions: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-sequence bool: every position below the length is right."""
    T = predictions.shape[1]
    mask = torch.arange(T, device=predictions.device)[None] < lengths[:, None].to(predictions.device)
    wrong = (predictions != targets[:, :T].to(predictions.device).long()) & mask
    return ~wrong.any(1)


def config_dict(config: ModelConfig) -> dict:
    return asdict(config)

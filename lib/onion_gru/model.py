"""The sequence-repeating GRU: a single-layer GRU that first reads the input and then, from its
final state h, writes the input out again; a ``RepeatRNN`` holds K of them (a group, K = 1 for one).
The cell is a GRU unless the config names another (cells.py: the LSTM and Elman comparison).

Reading and generation share the GRU, the embedding and the head (as in the authors' code); it is one
RNN run over [x_1..x_L, SOS, y_1..y_{L-1}] with the loss on the last L steps.  ``encode`` and
``decode`` are separate public steps because every intervention and probe acts on h between them.

Every tensor has a leading model axis: tokens [K, B, T], lengths [K, B], states [K, B, S] (S = H,
or 2H for an LSTM), logits [K, B, T, 30].  The members of a group share the hidden size and cell;
each has its own weights and variant, and computes what it would alone (packed.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import N_SYMBOLS
from .cells import CELLS
from .packed import PRECISIONS, Packing
from .layers import GroupEmbedding, GroupLinear, gather_rows, member_state, stack_states

SOS = N_SYMBOLS  # start-of-generation token id (30)
NO_INPUT = N_SYMBOLS + 1  # constant decoder input of the "no input" variant (31)
VARIANTS = ("autoregressive", "no_input")


@dataclass(frozen=True)
class ModelConfig:
    hidden_size: int
    variant: str = "autoregressive"  # or "no_input": the decoder sees SOS, then a constant token
    cell: str = "gru"  # or "lstm", "elman" (cells.py)
    precision: str = "fp32"  # or "bf16": the GRU's recurrent products (packed.PRECISIONS)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {VARIANTS}")
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose from {sorted(CELLS)}")
        if self.precision not in PRECISIONS or (self.precision != "fp32" and self.cell != "gru"):
            raise ValueError(f"precision {self.precision!r}: choose from {sorted(PRECISIONS)} (bf16: GRU cell only)")
        if self.hidden_size <= 0:
            raise ValueError(f"hidden_size must be positive, got {self.hidden_size}")

    @property
    def vocabulary(self) -> int:
        """Embedding rows: 30 symbols and SOS, and NO_INPUT for the no-input variant."""
        return N_SYMBOLS + 1 + int(self.variant == "no_input")

    @property
    def state_size(self) -> int:
        """Width of the stored state: H, or 2H for an LSTM's [h, c]."""
        return CELLS[self.cell].width * self.hidden_size


class RepeatRNN(nn.Module):
    """K repeat RNNs of one hidden size and cell.  The shared embedding table has room for NO_INPUT; an
    autoregressive member's extra row is 0 and never read, and ``member_state`` leaves it out, so
    a member's state dict is the single model's (the cache format)."""

    def __init__(self, configs: list[ModelConfig] | ModelConfig):
        super().__init__()
        self.configs = [configs] if isinstance(configs, ModelConfig) else list(configs)
        H, K = self.hidden_size, len(self.configs)
        if any((c.hidden_size, c.cell) != (H, self.configs[0].cell) for c in self.configs):
            raise ValueError("the members of a group share their hidden size and cell")
        # PyTorch default initialisation throughout, as the authors: N(0,1) embedding, U(+-1/sqrt(H)) GRU
        # (each member draws only its own vocabulary's rows, so that K = 1 draws what nn.Embedding does)
        self.embedding = GroupEmbedding(N_SYMBOLS + 2, H, K, rows=[c.vocabulary for c in self.configs])
        if any(c.precision != self.configs[0].precision for c in self.configs):
            raise ValueError("the members of a group share their precision")
        self.rnn = CELLS[self.configs[0].cell](H, H, K)
        self.rnn.matmul_dtype = PRECISIONS[self.configs[0].precision]
        self.fc = GroupLinear(H, N_SYMBOLS, K)
        self.register_buffer("no_input", torch.tensor([c.variant == "no_input" for c in self.configs]),
                             persistent=False)

    @property
    def hidden_size(self) -> int:
        return self.configs[0].hidden_size

    @property
    def state_size(self) -> int:
        return self.configs[0].state_size

    @property
    def config(self) -> ModelConfig:
        """The one member's config (K = 1)."""
        (config,) = self.configs
        return config

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    def member_state(self, k: int) -> dict:
        state = member_state(self.state_dict(), k)
        state["embedding.weight"] = state["embedding.weight"][:self.configs[k].vocabulary].clone()
        return state

    def load_members(self, states: list[dict]) -> "RepeatRNN":
        padded = []
        for state in states:
            table = state["embedding.weight"]
            padded.append({**state, "embedding.weight": torch.cat(
                [table, table.new_zeros(N_SYMBOLS + 2 - len(table), table.shape[1])])})
        self.load_state_dict(stack_states(padded))
        return self

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Read ``tokens [K, B, T]``; return each sequence's state after its own last token, ``[K, B, S]``
        (S = ``state_size``)."""
        packing = Packing.of(lengths, *tokens.shape, device=tokens.device)
        return self.rnn(self.input_projection(packing.pack(tokens)), packing, final=True)

    def input_projection(self, tokens: torch.Tensor) -> torch.Tensor:
        """W_ih E[token] + b_ih of token ids [K, ...]: the projected table, gathered (packed.py says why)."""
        return gather_rows(self.rnn.project(self.embedding.weight), tokens)

    def decoder_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """[SOS, y_0, ..., y_{T-2}] (teacher forcing), or [SOS, NI, NI, ...] for no-input members."""
        K, B, T = targets.shape
        rest = torch.where(self.no_input[:, None, None], NO_INPUT, targets[..., :-1].long())
        return torch.cat([torch.full((K, B, 1), SOS, dtype=torch.long, device=targets.device), rest], 2)

    def decode(self, h: torch.Tensor, targets: torch.Tensor, return_states: bool = False,
               lengths: torch.Tensor | None = None):
        """Teacher-forced generation from states ``h [K, B, S]``: logits ``[K, B, T, 30]`` for T =
        targets' width.  Given ``lengths``, positions past a sequence's length are not computed (0);
        without, every sequence runs the T steps."""
        inputs = self.decoder_inputs(targets)
        packing = Packing.of(lengths, *inputs.shape, device=inputs.device)
        states = self.rnn(self.input_projection(packing.pack(inputs)), packing, h)
        logits = packing.unpack(self.fc(self.rnn.output(states)))
        return (logits, packing.unpack(states)) if return_states else logits

    @torch.no_grad()
    def generate(self, h: torch.Tensor, steps: int) -> torch.Tensor:
        """Free-running greedy generation: each step feeds the model's own previous prediction."""
        K, B, _ = h.shape
        packing = Packing.of(None, K, B, 1, device=h.device)
        token = torch.full((K, B), SOS, dtype=torch.long, device=h.device)
        out = []
        for t in range(steps):
            step_in = torch.where(self.no_input[:, None], NO_INPUT, token) if t else token
            h = self.rnn(self.input_projection(step_in), packing, h)  # one step: packed rows are the batch
            token = self.fc(self.rnn.output(h)).argmax(-1)
            out.append(token)
        return torch.stack(out, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[K, B, T, 30]``, positions past each length masked by the loss."""
        return self.decode(self.encode(tokens, lengths), tokens, lengths=lengths)


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
                  tokens_per_batch: float | None = None) -> torch.Tensor:
    """Each member's token cross-entropy over the valid tokens of its batch, ``[K]``: their mean (the
    authors' loss), or their sum over ``tokens_per_batch``, a constant (see train.LengthBucketSampler).
    A group trains on the sum over members, so each member gets the gradient of its own loss."""
    K, B, T = logits.shape[:3]
    targets = targets[..., :T].long().to(logits.device)
    mask = torch.arange(T, device=logits.device) < lengths[..., None].to(logits.device)
    tokens = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    total = (tokens.view(K, B * T) * mask.view(K, B * T)).sum(1)
    return total / (mask.view(K, -1).sum(1) if tokens_per_batch is None else tokens_per_batch)


def exact_match(predictions: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-sequence bool ``[..., B]``: every position below the length is right."""
    T = predictions.shape[-1]
    mask = torch.arange(T, device=predictions.device) < lengths[..., None].to(predictions.device)
    wrong = (predictions != targets[..., :T].to(predictions.device).long()) & mask
    return ~wrong.any(-1)

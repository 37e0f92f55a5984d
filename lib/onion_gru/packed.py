"""Packed sequences and the weights of K recurrent cells (every cell's: ``Packing``, ``CellWeights``),
and the GRU's recurrence on them: K single-layer GRUs with their own weights, run together over
whole sequences, with the backward written by hand (cells.py adds the LSTM and Elman RNN on the
same layout).  K = 1 is one GRU; every model, probe and bench in this project runs through here.

Why: at the sizes of this task (N <= 256, batch 256) a training step is bound by the number of
kernels, not by arithmetic, on the CPU and even more on a GPU.  So:
- a group of K models is one batched matrix product per step (``bmm``), never one per model: the
  kernel count of a step does not grow with K;
- each time step is 9 kernels forward and 3 backward: every backward factor is computed for all
  steps at once after the loop, so the recurrence only multiplies the incoming gradient by them and
  runs one product (``nn.GRU`` on CPU records a dozen autograd nodes per step and replays each);
- states carry a constant 1 in an extra column and the recurrent weight matrix its bias as an extra
  column, so every product includes its bias and one product gives the weight's and its bias's
  gradient together;
- the input projection is outside the recurrence: for token inputs it is computed once per
  vocabulary row (32) and gathered, not once per token (about 1,400 per batch), which removes two
  of the six large products of a training step (``GroupGRU.forward``);
- sequences are packed (sorted by length, time-major; step t runs only the rows still inside their
  sequence), so almost no arithmetic is spent on padding.  In a group, step t runs the largest
  number of rows any member still needs; a member's extra rows continue sequences that have ended,
  their states are never read and their gradients are exactly 0, so each member computes what it
  would alone (up to float rounding of the products' blocking).

Same function and parameters as ``nn.GRU`` per member (gate order r, z, n; ``n = tanh(W_in x + b_in
+ r * (W_hn h + b_hn))``); tests/test_packed.py checks values and gradients against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class Packing:
    """Where each (member, sequence, step) of a [K, B, T] batch goes in the packed layout [K, S]:
    per member, step 0 of every sequence (longest first), then step 1 of the first ``sizes[1]``, and
    so on; ``sizes[t]`` is the most sequences any member still runs at step t."""
    order: torch.Tensor  # [K, B] each member's sequences by decreasing length
    sizes: tuple[int, ...]  # rows run at each step
    index: torch.Tensor  # [K, S] row b * T + t of the member's flat batch, for each packed row
    valid: torch.Tensor  # [K, S] the packed row lies inside its sequence
    last: torch.Tensor  # [K, B] packed row of each sequence's last step

    @staticmethod
    def of(lengths: torch.Tensor | None, K: int, B: int, T: int, device=None) -> "Packing":
        """``lengths [K, B]``; None: every sequence fills the T steps."""
        lengths = torch.full((K, B), T) if lengths is None else lengths.long().cpu().reshape(K, B).clamp(1, T)
        order = torch.argsort(lengths, dim=1, descending=True, stable=True)
        steps = torch.arange(T)
        running = lengths.gather(1, order)[:, None] > steps[None, :, None]  # [K, T, B]
        sizes = running.sum(2).amax(0)  # [T]
        run = torch.arange(B)[None] < sizes[:, None]  # [T, B], the same rows for every member
        index = (order[:, None] * T + steps[None, :, None])[:, run]  # [K, S], time-major like ``run``
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(B).expand(K, B))
        last = (sizes.cumsum(0) - sizes)[lengths - 1] + rank
        return Packing(order.to(device), tuple(sizes.tolist()), index.to(device), running[:, run].to(device),
                       last.to(device))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.order.shape, len(self.sizes))

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[K, B, T, ...] -> [K, S, ...]"""
        K = x.shape[0]
        flat = x.flatten(0, 2)
        offsets = torch.arange(K, device=x.device)[:, None] * (x.shape[1] * x.shape[2])
        return flat.index_select(0, (self.index + offsets).flatten()).view(K, -1, *x.shape[3:])

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """[K, S, ...] -> [K, B, T, ...], zero past each sequence's length"""
        K, B, T = self.shape
        # rows past a length go to a spare row per member, dropped at the end
        target = torch.where(self.valid, self.index, B * T)
        target = (target + torch.arange(K, device=x.device)[:, None] * (B * T + 1)).flatten()
        out = x.new_zeros(K * (B * T + 1), *x.shape[2:]).index_copy(0, target, x.flatten(0, 1))
        return out.view(K, B * T + 1, *x.shape[2:])[:, :B * T].reshape(K, B, T, *x.shape[2:])


def _product(w: torch.Tensor, dtype: torch.dtype | None, rows: int, accumulate: bool = False):
    """``f(a, out)``: ``out = a @ w`` (``accumulate``: ``out += a @ w``) for blocks ``a [K, n, .]`` of at
    most ``rows`` rows.  ``dtype`` None: in fp32, by the kernels every shipped entry used.
    ``torch.bfloat16``: both operands rounded to bf16 for the product (``w`` once, here), the result
    added to the fp32 ``out``: states, gates and weights stay fp32 (PRECISIONS).  The bf16 product
    always runs ``rows`` rows (a block's own rows, then stale ones, whose results are dropped): oneDNN
    builds a kernel per shape, and a new shape at every step cost more than the product itself."""
    if dtype is None:
        return (lambda a, out: out.baddbmm_(a, w)) if accumulate else (lambda a, out: torch.bmm(a, w, out=out))
    low, buffer = w.to(dtype), w.new_zeros(w.shape[0], rows, w.shape[1], dtype=dtype)

    def product(a, out):
        buffer[:, :a.shape[1]].copy_(a)
        result = torch.bmm(buffer, low)[:, :a.shape[1]]
        return out.add_(result) if accumulate else out.copy_(result)
    return product


def _weight_gradient(d_gh: torch.Tensor, h_prev1: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """d_gh^T h_prev1 over all packed rows [K, S, .]: fp32, or bf16 operands with S padded by zero rows
    to a multiple of 512 (few shapes, see ``_product``), cast as they lie (a transposing copy cost
    more than the product: measured)."""
    if dtype is None:
        return torch.bmm(d_gh.mT, h_prev1)
    K, S, G = d_gh.shape
    padded = -(-S // 512) * 512
    a = d_gh.new_zeros(K, padded, G, dtype=dtype)
    a[:, :S].copy_(d_gh)
    b = h_prev1.new_zeros(K, padded, h_prev1.shape[2], dtype=dtype)
    b[:, :S].copy_(h_prev1)
    return torch.bmm(a.mT, b).float()


# The precisions a model's recurrent products may run in (ModelConfig.precision): fp32, or bf16 for
# the two products of each time step and the recurrent weight's gradient, with fp32 master weights,
# optimizer state, gates, states and loss (an onion stores positions at geometrically shrinking
# magnitudes: rounding the state itself could erase its inner layers).
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def _rows(blocks: torch.Tensor, sizes) -> list[torch.Tensor]:
    """[K, S, ...] -> the [K, sizes[t], ...] block of each step (views)"""
    return list(blocks.split(sizes, dim=1))


class PackedGRU(torch.autograd.Function):
    """The recurrence of K GRUs from h0 [K, B, H], given each packed row's input projection
    gi = W_ih x + b_ih [K, S, 3H]: their packed states [K, S, H], or with ``final`` only each
    sequence's state after its last step, [K, B, H]."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, packing, final, dtype=None):
        K, S, _ = gi.shape
        B, H, sizes = h0.shape[1], h0.shape[2], packing.sizes
        # s: state blocks with a column of ones; block 0 is h0 (sorted), block t + 1 the states after step t
        s = gi.new_empty(K, B + S, H + 1)
        s[..., H] = 1
        s[:, :B, :H] = h0.gather(1, packing.order[..., None].expand(K, B, H))
        w_hh1_t = torch.cat([w_hh, b_hh[..., None]], 2).mT.contiguous()
        recurrent = _product(w_hh1_t, dtype, rows=B)
        gh, rz, n = gi.new_empty(K, S, 3 * H), gi.new_empty(K, S, 2 * H), gi.new_empty(K, S, H)
        s_blocks, s_outs = _rows(s, (B,) + sizes), _rows(s[:, B:, :H], sizes)
        steps = zip(sizes, s_blocks, s_outs, _rows(gh, sizes), _rows(gi[..., :2 * H], sizes),
                    _rows(gi[..., 2 * H:], sizes), _rows(gh[..., :2 * H], sizes), _rows(gh[..., 2 * H:], sizes),
                    _rows(rz, sizes), _rows(rz[..., :H], sizes), _rows(rz[..., H:], sizes), _rows(n, sizes))
        for size, s_in, s_out, gh_t, gi_rz_t, gi_n_t, gh_rz_t, gh_n_t, rz_t, r_t, z_t, n_t in steps:
            h_in = s_in[:, :size]  # the sequences still running are the first ``size`` of the block
            recurrent(h_in, gh_t)
            torch.add(gi_rz_t, gh_rz_t, out=rz_t).sigmoid_()
            # tanh(a) as 2 sigmoid(2a) - 1: ATen's CPU tanh costs 5x its sigmoid (54 vs 12 us here)
            torch.addcmul(gi_n_t, r_t, gh_n_t, out=n_t).mul_(2).sigmoid_().mul_(2).sub_(1)
            torch.lerp(n_t, h_in[..., :H], z_t, out=s_out)  # (1 - z) n + z h
        ctx.packing, ctx.final, ctx.dtype = packing, final, dtype
        ctx.save_for_backward(w_hh, gh, rz, n, s)
        states = s[:, B:, :H]
        return states.gather(1, packing.last[..., None].expand(K, B, H)) if final else states.contiguous()

    @staticmethod
    def backward(ctx, d_out):
        w_hh, gh, rz, n, s = ctx.saved_tensors
        packing = ctx.packing
        (K, B, _), H, sizes = packing.shape, n.shape[2], packing.sizes
        # each step's input state (with its column of ones), packed like the gates
        h_prev1 = torch.cat([block[:, :size] for block, size in zip(_rows(s, (B,) + sizes), sizes)], 1)
        r, z, h_prev = rz[..., :H], rz[..., H:], h_prev1[..., :H]
        # d(state after step t) times these gives each gate's pre-activation gradient
        factors = n.new_empty(K, n.shape[1], 3, H)
        f_r, f_z, f_n = factors.unbind(2)
        d_n = torch.addcmul(torch.ones_like(n), n, n, value=-1).mul_(1 - z)  # (1 - z)(1 - n^2)
        torch.mul(d_n, r, out=f_n)  # W_hn h + b_hn
        torch.addcmul(r, r, r, value=-1, out=f_r).mul_(gh[..., 2 * H:]).mul_(d_n)  # reset gate
        torch.addcmul(z, z, z, value=-1, out=f_z).mul_(h_prev - n)  # update gate
        if ctx.final:  # d_h: the gradient reaching each state, filled in from the last step back
            d_h = n.new_zeros(n.shape).scatter_(1, packing.last[..., None].expand(K, B, H), d_out)
        else:
            d_h = d_out.clone(memory_format=torch.contiguous_format)
        d_gh = n.new_empty(K, n.shape[1], 3 * H)
        blocks = list(zip(sizes, _rows(d_h, sizes), _rows(d_gh, sizes), _rows(d_gh.view(K, -1, 3, H), sizes),
                          _rows(factors, sizes), _rows(z, sizes)))
        d_h0 = None
        into_state = _product(w_hh, ctx.dtype, rows=B, accumulate=True)
        for t in reversed(range(len(sizes))):
            size, d_h_t, d_gh_t, d_gh3_t, f_t, z_t = blocks[t]
            torch.mul(d_h_t.unsqueeze(2), f_t, out=d_gh3_t)
            # into the state before step t: the previous step's output (its first ``size`` rows), or h0
            if t:
                dst = blocks[t - 1][1][:, :size]
                dst.addcmul_(d_h_t, z_t)
            else:
                dst = d_h0 = d_h_t * z_t
            into_state(d_gh_t, dst)
        need = ctx.needs_input_grad
        d_gi = d_h0_unsorted = d_hh = None
        if need[0]:
            d_gi = d_gh.clone()
            torch.mul(d_h, d_n, out=d_gi[..., 2 * H:])
        if need[1]:
            d_h0_unsorted = d_h0.new_zeros(K, B, H).scatter_(1, packing.order[:, :sizes[0], None].expand(-1, -1, H), d_h0)
        if need[2] or need[3]:
            d_hh = _weight_gradient(d_gh, h_prev1, ctx.dtype)
        return (d_gi, d_h0_unsorted, d_hh[..., :-1] if need[2] else None, d_hh[..., -1] if need[3] else None,
                None, None, None)


class CellWeights(nn.Module):
    """The weights of K one-layer recurrent cells with ``gates`` blocks of H rows, named and
    initialised as torch.nn's (U(+-1/sqrt(H)), drawn in its order), each with a leading model axis;
    the input projection; and the state's width (``width`` H) and what an output layer reads of it.
    The GRU here, the LSTM and Elman cells in cells.py."""
    gates, width = 3, 1
    recurrent_gates: int | None = None  # blocks of weight_hh (default ``gates``; 0: no recurrent weights)
    matmul_dtype: torch.dtype | None = None  # the recurrent products' precision (PRECISIONS; GRU only)

    def __init__(self, input_size: int, hidden_size: int, k: int = 1):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        G = self.gates * hidden_size
        R = (self.gates if self.recurrent_gates is None else self.recurrent_gates) * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(k, G, input_size))
        if R:
            self.weight_hh_l0 = nn.Parameter(torch.empty(k, R, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(k, G))
        if R:
            self.bias_hh_l0 = nn.Parameter(torch.empty(k, R))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @property
    def state_size(self) -> int:
        return self.width * self.hidden_size

    def output(self, states: torch.Tensor) -> torch.Tensor:
        """What the output layer reads of states [..., state_size]: h, the first H."""
        return states[..., :self.hidden_size]

    def recurrent(self, s: torch.Tensor) -> torch.Tensor:
        """W_hh h + b_hh of states s [K, B, state_size] -> [K, B, recurrent blocks * H]."""
        return torch.baddbmm(self.bias_hh_l0[:, None], s[..., :self.hidden_size], self.weight_hh_l0.mT)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The input projection W_ih x + b_ih of inputs [K, ..., I] -> [K, ..., gates * H]."""
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        return torch.baddbmm(self.bias_ih_l0[:, None], flat, self.weight_ih_l0.mT).view(*x.shape[:-1], -1)


class GroupGRU(CellWeights):
    """K one-layer GRUs, the weights as ``nn.GRU``'s."""

    def forward(self, gi: torch.Tensor, packing: Packing, h0: torch.Tensor | None = None,
                final: bool = False) -> torch.Tensor:
        """From the packed rows' input projections ``gi [K, S, 3H]`` (``project``) and ``h0 [K, B, H]``
        (zeros if None); see ``PackedGRU``.  For token inputs, project the embedding table once and
        gather its rows (layers.gather_rows): 32 rows instead of one per packed row, forward and back."""
        K, B, _ = packing.shape
        h0 = gi.new_zeros(K, B, self.hidden_size) if h0 is None else h0
        return PackedGRU.apply(gi, h0, self.weight_hh_l0, self.bias_hh_l0, packing, final, self.matmul_dtype)

    def write(self, gi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The write strength of one step from states s with input projections gi: 1 - z (PyTorch's z
        keeps the old state), [K, B, H]."""
        H = self.hidden_size
        return 1 - torch.sigmoid(gi[..., H:2 * H] + self.recurrent(s)[..., H:2 * H])

    def sequence(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """States ``[K, B, T, H]`` over full-length inputs ``x [K, B, T, I]``."""
        packing = Packing.of(None, *x.shape[:3], device=x.device)
        return packing.unpack(self(self.project(packing.pack(x)), packing, h0))

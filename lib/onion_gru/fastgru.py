"""A single-layer GRU over whole sequences, with its backward written by hand, for small GRUs on CPU.

Why: at the sizes of this task (N <= 256, batch 256) a CPU training step is bound by the number of
kernels, and at N >= 128 also by the arithmetic spent on padding.  ``nn.GRU`` on CPU records about a
dozen autograd nodes per time step (two sigmoids on strided chunks alone cost a quarter of its
forward) and replays each in the backward.  Here:
- each time step is 6 kernels forward and 3 backward: every backward factor is computed for all
  steps at once after the loop, so the recurrence only multiplies the incoming gradient by them and
  runs one matmul;
- inputs and states carry a constant 1 in an extra column and each weight matrix its bias as an
  extra column, so every product includes its bias and one matmul gives a weight's and its bias's
  gradient together;
- sequences are packed (sorted by length, time-major; step t runs only the rows still inside their
  sequence), so no arithmetic is spent on padding, in reading or in generation.

Same function and parameters as ``nn.GRU`` (gate order r, z, n; ``n = tanh(W_in x + b_in + r *
(W_hn h + b_hn))``); states past a sequence's length are 0.  Equal to ``nn.GRU`` up to float
rounding: tests/test_fastgru.py checks values and gradients against it.  CUDA keeps ``nn.GRU``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Packing:
    """Where each (sequence, step) of a [B, T] batch goes in the packed, time-major layout: step 0 of
    every sequence (longest first), then step 1 of those still running, and so on."""
    order: torch.Tensor  # [B] sequences by decreasing length
    sizes: tuple[int, ...]  # sequences still running at each step
    index: torch.Tensor  # [sum(sizes)] row b * T + t of the flat batch, for each packed row
    last: torch.Tensor  # [B] packed row of each sequence's last step

    @staticmethod
    def of(lengths: torch.Tensor | None, B: int, T: int) -> "Packing":
        """``lengths`` None: every sequence fills the T steps."""
        lengths = torch.full((B,), T) if lengths is None else lengths.long().cpu().clamp(1, T)
        order = torch.argsort(lengths, descending=True, stable=True)
        running = lengths[order][None] > torch.arange(T)[:, None]  # [T, B]: step t of the j-th longest
        sizes = running.sum(1)
        index = (order[None] * T + torch.arange(T)[:, None])[running]  # time-major, as ``running``
        rank = torch.empty_like(order)
        rank[order] = torch.arange(B)
        last = (sizes.cumsum(0) - sizes)[lengths - 1] + rank
        return Packing(order, tuple(sizes.tolist()), index, last)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, ...] -> [rows, ...]"""
        return x.flatten(0, 1)[self.index]

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """[rows, ...] -> [B, T, ...], zero past each sequence's length"""
        B, T = len(self.order), len(self.sizes)
        return x.new_zeros(B * T, *x.shape[1:]).index_copy(0, self.index, x).view(B, T, *x.shape[1:])


class PackedGRU(torch.autograd.Function):
    """A GRU run from h0 [B, H] over packed inputs x [rows, I]: its packed states [rows, H], or
    with ``final`` only each sequence's state after its last step, [B, H]."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, packing, final):
        rows, I = x.shape
        B, H, sizes = len(h0), h0.shape[1], packing.sizes
        x1 = x.new_empty(rows, I + 1)
        x1[:, :I], x1[:, I] = x, 1
        gi = x1 @ torch.cat([w_ih, b_ih[:, None]], 1).t()
        # s: state blocks with a column of ones; block 0 is h0 (sorted), block t + 1 the states after step t
        s = x.new_empty(B + rows, H + 1)
        s[:, H] = 1
        torch.index_select(h0, 0, packing.order, out=s[:B, :H])
        w_hh1_t = torch.cat([w_hh, b_hh[:, None]], 1).t()
        gh, rz, n = x.new_empty(rows, 3 * H), x.new_empty(rows, 2 * H), x.new_empty(rows, H)
        s_blocks, s_outs = s.split((B,) + sizes), s[B:, :H].split(sizes)
        gi_rz, gi_n, gh_rz, gh_n = (a.split(sizes) for a in (gi[:, :2 * H], gi[:, 2 * H:], gh[:, :2 * H], gh[:, 2 * H:]))
        steps = zip(sizes, s_blocks, s_outs, gh.split(sizes), gi_rz, gi_n, gh_rz, gh_n, rz.split(sizes),
                    rz[:, :H].split(sizes), rz[:, H:].split(sizes), n.split(sizes))
        for size, s_in, s_out, gh_t, gi_rz_t, gi_n_t, gh_rz_t, gh_n_t, rz_t, r_t, z_t, n_t in steps:
            h_in = s_in[:size]  # the sequences still running are the first ``size`` of the block
            torch.mm(h_in, w_hh1_t, out=gh_t)
            torch.add(gi_rz_t, gh_rz_t, out=rz_t).sigmoid_()
            torch.addcmul(gi_n_t, r_t, gh_n_t, out=n_t).tanh_()
            torch.lerp(n_t, h_in[:, :H], z_t, out=s_out)  # (1 - z) n + z h
        ctx.packing, ctx.final = packing, final
        ctx.save_for_backward(x1, w_ih, w_hh, gh, rz, n, s)
        return s[B:, :H].index_select(0, packing.last) if final else s[B:, :H].contiguous()

    @staticmethod
    def backward(ctx, d_out):
        x1, w_ih, w_hh, gh, rz, n, s = ctx.saved_tensors
        packing = ctx.packing
        B, H, sizes = len(packing.order), n.shape[1], packing.sizes
        # each step's input state (with its column of ones), packed like the gates
        h_prev1 = torch.cat([block[:size] for block, size in zip(s.split((B,) + sizes), sizes)])
        r, z, h_prev = rz[:, :H], rz[:, H:], h_prev1[:, :H]
        # d(state after step t) times these gives each gate's pre-activation gradient
        factors = n.new_empty(len(n), 3, H)
        f_r, f_z, f_n = factors.unbind(1)
        d_n = torch.addcmul(torch.ones_like(n), n, n, value=-1).mul_(1 - z)  # (1 - z)(1 - n^2)
        torch.mul(d_n, r, out=f_n)  # W_hn h + b_hn
        torch.addcmul(r, r, r, value=-1, out=f_r).mul_(gh[:, 2 * H:]).mul_(d_n)  # reset gate
        torch.addcmul(z, z, z, value=-1, out=f_z).mul_(h_prev - n)  # update gate
        if ctx.final:  # d_h: the gradient reaching each state, filled in from the last step back
            d_h = n.new_zeros(len(n), H).index_copy_(0, packing.last, d_out)
        else:
            d_h = d_out.clone(memory_format=torch.contiguous_format)
        d_gh = n.new_empty(len(n), 3 * H)
        blocks = list(zip(sizes, d_h.split(sizes), d_gh.split(sizes), d_gh.view(-1, 3, H).split(sizes),
                          factors.split(sizes), z.split(sizes)))
        d_h0 = None
        for t in reversed(range(len(sizes))):
            size, d_h_t, d_gh_t, d_gh3_t, f_t, z_t = blocks[t]
            torch.mul(d_h_t.unsqueeze(1), f_t, out=d_gh3_t)
            # into the state before step t: the previous step's output (its first ``size`` rows), or h0
            if t:
                dst = blocks[t - 1][1][:size]
                dst.addcmul_(d_h_t, z_t)
            else:
                dst = d_h0 = d_h_t * z_t
            dst.addmm_(d_gh_t, w_hh)
        d_gi = d_gh.clone()
        torch.mul(d_h, d_n, out=d_gi[:, 2 * H:])
        need = ctx.needs_input_grad
        d_x = d_ih = d_hh = d_h0_unsorted = None
        if need[0]:
            d_x = d_gi @ w_ih
        if need[1]:
            d_h0_unsorted = d_h0.new_zeros(B, H).index_copy_(0, packing.order[:sizes[0]], d_h0)
        if need[2] or need[4]:
            d_ih = d_gi.t() @ x1
        if need[3] or need[5]:
            d_hh = d_gh.t() @ h_prev1
        return (d_x, d_h0_unsorted, d_ih[:, :-1] if need[2] else None, d_hh[:, :-1] if need[3] else None,
                d_ih[:, -1] if need[4] else None, d_hh[:, -1] if need[5] else None, None, None)


def gru_packed(rnn: torch.nn.GRU, x: torch.Tensor, packing: Packing, h0: torch.Tensor | None = None,
               final: bool = False) -> torch.Tensor:
    """The one-layer ``nn.GRU`` ``rnn`` run by hand over packed inputs (see ``PackedGRU``)."""
    h0 = x.new_zeros(len(packing.order), rnn.hidden_size) if h0 is None else h0
    return PackedGRU.apply(x, h0, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0,
                           packing, final)


def gru_sequence(rnn: torch.nn.GRU, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """``rnn(x, h0)[0]`` of a one-layer batch-first ``nn.GRU``: by hand on CPU, by ``rnn`` elsewhere."""
    if x.device.type != "cpu":
        h0 = x.new_zeros(x.shape[0], rnn.hidden_size) if h0 is None else h0
        return rnn(x, h0.unsqueeze(0).contiguous())[0]
    packing = Packing.of(None, *x.shape[:2])
    return packing.unpack(gru_packed(rnn, packing.pack(x), packing, h0))

"""The hand-written CPU GRU (fastgru.py) against torch.nn.GRU: values and gradients, packed and not."""
import pytest
import torch

from onion_gru.fastgru import Packing, PackedGRU, gru_packed, gru_sequence

LENGTHS = torch.tensor([6, 2, 3, 6, 1, 4, 2])


def gru_and_inputs(B=7, T=6):
    torch.manual_seed(0)
    rnn = torch.nn.GRU(5, 4, batch_first=True).double()
    x = torch.randn(B, T, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(B, 4, dtype=torch.double, requires_grad=True)
    return rnn, x, h0, [x, h0, *rnn.parameters()]


def grads(out, weights, wrt):
    return torch.autograd.grad((out * weights).sum(), wrt)


def test_packing_layout_by_hand():
    """Lengths [2, 3, 1]: step 0 of all three (longest first), step 1 of two, step 2 of one."""
    p = Packing.of(torch.tensor([2, 3, 1]), 3, 3)
    assert p.order.tolist() == [1, 0, 2]
    assert p.sizes == (3, 2, 1)
    assert p.index.tolist() == [1 * 3 + 0, 0 * 3 + 0, 2 * 3 + 0, 1 * 3 + 1, 0 * 3 + 1, 1 * 3 + 2]
    assert p.last.tolist() == [4, 5, 2]  # packed rows of (seq 0, step 1), (seq 1, step 2), (seq 2, step 0)
    x = torch.arange(9.0).view(3, 3)
    assert torch.equal(p.unpack(p.pack(x)), x * torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]]))


def test_full_length_sequence_equals_nn_gru():
    rnn, x, h0, wrt = gru_and_inputs()
    ref, mine = rnn(x, h0[None])[0], gru_sequence(rnn, x, h0)
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)
    w = torch.randn_like(ref)
    for a, b in zip(grads(mine, w, wrt), grads(ref, w, wrt)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("final", [False, True])
def test_packed_equals_nn_gru_inside_each_length(final):
    """States inside each sequence's length (or its last one) and every gradient, as nn.GRU's."""
    rnn, x, h0, wrt = gru_and_inputs()
    ref = rnn(x, h0[None])[0]
    p = Packing.of(LENGTHS, *x.shape[:2])
    mine = gru_packed(rnn, p.pack(x), p, h0, final=final)
    if final:
        ref = ref[torch.arange(len(x)), LENGTHS - 1]
    else:
        mine, ref = p.unpack(mine), ref * (torch.arange(6)[None] < LENGTHS[:, None])[..., None]
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)
    w = torch.randn_like(ref)
    for a, b in zip(grads(mine, w, wrt), grads(ref, w, wrt)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_gradcheck():
    rnn, x, h0, _ = gru_and_inputs(B=4, T=3)
    p = Packing.of(torch.tensor([3, 1, 2, 3]), 4, 3)
    for final in (False, True):
        assert torch.autograd.gradcheck(lambda x, h0, *w: PackedGRU.apply(p.pack(x), h0, *w, p, final),
                                        (x, h0, *rnn.parameters()))


def test_frozen_weights_get_no_gradient():
    """Stage-2 methods backpropagate through a frozen GRU: only the state gets a gradient."""
    rnn, x, h0, _ = gru_and_inputs()
    rnn.requires_grad_(False)
    out = gru_sequence(rnn, x.detach(), h0)
    out.sum().backward()
    assert h0.grad is not None and all(p.grad is None for p in rnn.parameters())

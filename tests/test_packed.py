"""The hand-written GRU group (packed.py) against torch.nn.GRU run on each member alone: values and
gradients, packed and not."""
import pytest
import torch

from onion_gru.packed import GroupGRU, Packing, PackedGRU

# three members, each with its own lengths (so each alone would pack differently)
LENGTHS = torch.tensor([[6, 2, 3, 6, 1, 4, 2], [1, 1, 2, 1, 3, 1, 1], [5, 5, 5, 5, 5, 5, 5]])


def group_and_inputs(K=3, B=7, T=6):
    """A GroupGRU in float64 and the K nn.GRUs holding its members' weights."""
    torch.manual_seed(0)
    group = GroupGRU(5, 4, K).double()
    singles = []
    for k in range(K):
        rnn = torch.nn.GRU(5, 4, batch_first=True).double()
        rnn.load_state_dict({name: p[k] for name, p in group.named_parameters()})
        singles.append(rnn)
    x = torch.randn(K, B, T, 5, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(K, B, 4, dtype=torch.double, requires_grad=True)
    return group, singles, x, h0


def grads(out, weights, wrt):
    return torch.autograd.grad((out * weights).sum(), wrt)


def test_packing_layout_by_hand():
    """Lengths [2, 3, 1]: step 0 of all three (longest first), step 1 of two, step 2 of one."""
    p = Packing.of(torch.tensor([[2, 3, 1]]), 1, 3, 3)
    assert p.order.tolist() == [[1, 0, 2]]
    assert p.sizes == (3, 2, 1)
    assert p.index.tolist() == [[1 * 3 + 0, 0 * 3 + 0, 2 * 3 + 0, 1 * 3 + 1, 0 * 3 + 1, 1 * 3 + 2]]
    assert p.valid.all()
    assert p.last.tolist() == [[4, 5, 2]]  # packed rows of (seq 0, step 1), (seq 1, step 2), (seq 2, step 0)
    x = torch.arange(9.0).view(1, 3, 3)
    assert torch.equal(p.unpack(p.pack(x)), x * torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]]))


def test_group_packing_runs_the_most_rows_any_member_needs():
    """Member 0 runs [2, 3, 1], member 1 [1, 1, 3]: step 1 runs 2 rows (member 0 needs 2), step 2
    one; member 1's second row at step 1 continues a finished sequence and is not valid."""
    p = Packing.of(torch.tensor([[2, 3, 1], [1, 1, 3]]), 2, 3, 3)
    assert p.sizes == (3, 2, 1)
    assert p.order.tolist() == [[1, 0, 2], [2, 0, 1]]
    assert p.valid.tolist() == [[True] * 6, [True, True, True, True, False, True]]
    assert p.last.tolist() == [[4, 5, 2], [1, 2, 5]]
    x = torch.arange(18.0).view(2, 3, 3)
    inside = torch.tensor([[[1, 1, 0], [1, 1, 1], [1, 0, 0]], [[1, 0, 0], [1, 0, 0], [1, 1, 1]]])
    assert torch.equal(p.unpack(p.pack(x)), x * inside)


def test_full_length_group_equals_nn_gru_per_member():
    group, singles, x, h0 = group_and_inputs()
    ref = torch.stack([rnn(x[k], h0[k][None])[0] for k, rnn in enumerate(singles)])
    mine = group.sequence(x, h0)
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)
    w = torch.randn_like(ref)
    mine_grads = grads(mine, w, [x, h0, *group.parameters()])
    ref_grads = grads(ref, w, [x, h0, *(p for rnn in singles for p in rnn.parameters())])
    torch.testing.assert_close(mine_grads[0], ref_grads[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(mine_grads[1], ref_grads[1], rtol=0, atol=1e-12)
    for i, g in enumerate(mine_grads[2:]):  # each group weight's gradient is its members' own
        torch.testing.assert_close(g, torch.stack(ref_grads[2 + i::4]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("final", [False, True])
def test_packed_group_equals_nn_gru_per_member_inside_each_length(final):
    """Each member with its own lengths: states inside each length (or its last one) and every
    gradient are what nn.GRU gives that member alone."""
    group, singles, x, h0 = group_and_inputs()
    K, B, T = LENGTHS.shape + (6,)
    ref = torch.stack([rnn(x[k], h0[k][None])[0] for k, rnn in enumerate(singles)])
    p = Packing.of(LENGTHS, K, B, T)
    mine = group(group.project(p.pack(x)), p, h0, final=final)
    if final:
        ref = ref.gather(2, (LENGTHS - 1)[..., None, None].expand(K, B, 1, 4))[:, :, 0]
    else:
        mine, ref = p.unpack(mine), ref * (torch.arange(T) < LENGTHS[..., None])[..., None]
    torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)
    w = torch.randn_like(ref)
    mine_grads = grads(mine, w, [x, h0, *group.parameters()])
    ref_grads = grads(ref, w, [x, h0, *(p for rnn in singles for p in rnn.parameters())])
    for a, b in zip(mine_grads[:2], ref_grads[:2]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for i, g in enumerate(mine_grads[2:]):
        torch.testing.assert_close(g, torch.stack(ref_grads[2 + i::4]), rtol=0, atol=1e-12)


def test_gradcheck():
    group, _, x, h0 = group_and_inputs(K=2, B=4, T=3)
    p = Packing.of(torch.tensor([[3, 1, 2, 3], [1, 2, 1, 1]]), 2, 4, 3)
    for final in (False, True):
        assert torch.autograd.gradcheck(lambda x, h0, w_hh, b_hh: PackedGRU.apply(group.project(p.pack(x)), h0, w_hh, b_hh, p, final),
                                        (x, h0, group.weight_hh_l0, group.bias_hh_l0))


def test_frozen_weights_get_no_gradient():
    """Stage-2 methods backpropagate through a frozen GRU: only the state gets a gradient."""
    group, _, x, h0 = group_and_inputs()
    group.requires_grad_(False)
    group.sequence(x.detach(), h0).sum().backward()
    assert h0.grad is not None and all(p.grad is None for p in group.parameters())


def test_bf16_products_stay_within_bf16_rounding_of_fp32():
    """precision "bf16": the recurrent products in bf16 (fp32 states and gates): values and every
    gradient within bf16's rounding (a relative 1e-2 of the largest entry) of the fp32 group's, and
    the states come out fp32."""
    torch.manual_seed(0)
    K, B, T, H = 2, 33, 7, 48  # odd row counts: the padded bf16 products must drop their extra rows
    group = GroupGRU(H, H, K)
    lengths = torch.randint(1, T + 1, (K, B))
    packing = Packing.of(lengths, K, B, T)
    x = torch.randn(K, B, T, H)
    h0 = torch.randn(K, B, H, requires_grad=True)
    outs = []
    for dtype in (None, torch.bfloat16):
        group.matmul_dtype = dtype
        group.zero_grad()
        h0.grad = None
        out = group(group.project(packing.pack(x)), packing, h0)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append((out.detach(), h0.grad.clone(), group.weight_hh_l0.grad.clone(), group.bias_hh_l0.grad.clone(),
                     group.weight_ih_l0.grad.clone()))
    assert outs[1][0].dtype == torch.float32
    for ref, low in zip(*outs):
        assert (ref - low).abs().max() <= 1e-2 * ref.abs().max(), (ref - low).abs().max()
        assert (ref - low).abs().max() > 0  # the products really ran in bf16


def test_precision_is_a_model_field_and_only_for_the_gru():
    from onion_gru.model import ModelConfig, RepeatRNN
    assert RepeatRNN(ModelConfig(8, precision="bf16")).rnn.matmul_dtype == torch.bfloat16
    assert RepeatRNN(ModelConfig(8)).rnn.matmul_dtype is None
    with pytest.raises(ValueError, match="bf16: GRU cell only"):
        ModelConfig(8, cell="lstm", precision="bf16")
    with pytest.raises(ValueError, match="share their precision"):
        RepeatRNN([ModelConfig(8), ModelConfig(8, precision="bf16")])

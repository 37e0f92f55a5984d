"""The LSTM and Elman cells (cells.py) against torch.nn, and the cell comparison through the stack."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from onion_gru import cache
from onion_gru.analysis import AnalysisConfig, get_analysis
from onion_gru.cells import CELLS, GroupElman, GroupLSTM
from onion_gru.packed import Packing
from onion_gru.jobs import missing_jobs
from onion_gru.run import run_jobs
from onion_gru.model import ModelConfig, RepeatRNN
from onion_gru.profiles import Budget, extension, get_profile
from onion_gru.train import RNNConfig, get_rnn, rnn_hash

H, I = 6, 5
REFERENCE = {GroupElman: lambda: nn.RNN(I, H, nonlinearity="tanh"), GroupLSTM: lambda: nn.LSTM(I, H)}


def reference_run(ref: nn.Module, x: torch.Tensor, lengths: torch.Tensor, s0: torch.Tensor):
    """nn.RNN / nn.LSTM over x [B, T, I] from the state s0 [B, S]: final states [B, S], outputs [B, T, H]."""
    packed = nn.utils.rnn.pack_padded_sequence(x.transpose(0, 1), lengths, enforce_sorted=False)
    if isinstance(ref, nn.LSTM):
        out, (h, c) = ref(packed, (s0[None, :, :H].contiguous(), s0[None, :, H:].contiguous()))
        final = torch.cat([h[0], c[0]], -1)
    else:
        out, h = ref(packed, s0[None].contiguous())
        final = h[0]
    out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[1])
    return final, out.transpose(0, 1)


@pytest.mark.parametrize("cls", [GroupElman, GroupLSTM])
def test_cell_matches_torch_nn_in_values_and_gradients(cls):
    torch.manual_seed(0)
    cell = cls(I, H)
    torch.manual_seed(0)
    ref = REFERENCE[cls]()  # drawn in the same order from the same seed: the same weights
    for name, p in ref.named_parameters():
        assert torch.equal(getattr(cell, name)[0], p), name
    B, T = 5, 4
    x, lengths = torch.randn(B, T, I), torch.tensor([4, 1, 3, 4, 2])
    s0 = torch.randn(B, cell.state_size)
    packing = Packing.of(lengths[None], 1, B, T)
    final = cell(cell.project(packing.pack(x[None])), packing, s0[None], final=True)[0]
    states = packing.unpack(cell(cell.project(packing.pack(x[None])), packing, s0[None]))[0]
    ref_final, ref_out = reference_run(ref, x, lengths, s0)
    torch.testing.assert_close(final, ref_final)
    torch.testing.assert_close(cell.output(states), ref_out)  # zero past each length, as pad_packed_sequence
    (final.square().sum() + cell.output(states).sum()).backward()
    (ref_final.square().sum() + ref_out.sum()).backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(getattr(cell, name).grad[0], p.grad, msg=name)


def _sigma(a):
    return 1 / (1 + torch.exp(-a))


def _input_gru_step(p, x, h):
    """The GRU with input-only reset and update gates, one step written out (gate order r, z, n)."""
    (W_ir, W_iz, W_in), (b_ir, b_iz, b_in) = p["weight_ih_l0"].chunk(3), p["bias_ih_l0"].chunk(3)
    r, z = _sigma(W_ir @ x + b_ir), _sigma(W_iz @ x + b_iz)
    n = torch.tanh(W_in @ x + b_in + r * (p["weight_hh_l0"] @ h + p["bias_hh_l0"]))
    return (1 - z) * n + z * h, 1 - z


def _mingru_step(p, x, h):
    """minGRU (Feng et al. 2024, sequential mode): z = sigma(W_z x), h~ = W_h x, h' = (1 - z) h + z h~."""
    (W_z, W_h), (b_z, b_h) = p["weight_ih_l0"].chunk(2), p["bias_ih_l0"].chunk(2)
    z = _sigma(W_z @ x + b_z)
    return (1 - z) * h + z * (W_h @ x + b_h), z


def _minlstm_step(p, x, h):
    """minLSTM (ibid.): f, i = sigma(W_f x), sigma(W_i x); h' = f/(f+i) h + i/(f+i) W_h x."""
    (W_f, W_i, W_h), (b_f, b_i, b_h) = p["weight_ih_l0"].chunk(3), p["bias_ih_l0"].chunk(3)
    f, i = _sigma(W_f @ x + b_f), _sigma(W_i @ x + b_i)
    return f / (f + i) * h + i / (f + i) * (W_h @ x + b_h), i / (f + i)


INPUT_GATED = {"gru_input_gates": _input_gru_step, "mingru": _mingru_step, "minlstm": _minlstm_step}


@pytest.mark.parametrize("name", sorted(INPUT_GATED))
def test_input_gated_cells_match_their_formulas_in_float64(name):
    torch.manual_seed(0)
    cell = CELLS[name](I, H).double()
    p = {k: v[0] for k, v in cell.named_parameters()}
    assert ("weight_hh_l0" in p) == (name == "gru_input_gates")  # the min cells have no recurrent weights
    B, T = 5, 4
    x, lengths = torch.randn(B, T, I, dtype=torch.float64), torch.tensor([4, 1, 3, 4, 2])
    s0 = torch.randn(B, H, dtype=torch.float64)
    packing = Packing.of(lengths[None], 1, B, T)
    final = cell(cell.project(packing.pack(x[None])), packing, s0[None], final=True)[0]
    gi = cell.project(x[None])[0]
    for b in range(B):
        h = s0[b]
        for t in range(int(lengths[b])):
            before = h
            h, write = INPUT_GATED[name](p, x[b, t], h)
            torch.testing.assert_close(cell.write(gi[None, None, b, t], before[None, None])[0, 0], write)
        torch.testing.assert_close(final[b], h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["gru", *sorted(INPUT_GATED)])
def test_only_a_gate_that_sees_the_state_writes_by_position(name):
    """The same token read at every step: an input-only gate writes it with the same strength each
    time (so it cannot make a schedule of positions), the GRU's update gate does not."""
    torch.manual_seed(0)
    cell = CELLS[name](I, H).double()
    gi = cell.project(torch.randn(1, 1, 1, I, dtype=torch.float64).expand(1, 1, 6, I))
    s, writes = torch.zeros(1, 1, H, dtype=torch.float64), []
    packing = Packing.of(None, 1, 1, 1)
    for t in range(6):
        writes.append(cell.write(gi[:, :, t], s))
        s = cell(gi[:, :, t], packing, s)
    spread = (torch.stack(writes) - writes[0]).abs().max().item()
    assert spread > 1e-3 if name == "gru" else spread < 1e-12


@pytest.mark.parametrize("cell", ["lstm", "elman", *sorted(INPUT_GATED)])
def test_a_group_member_computes_what_it_computes_alone(cell):
    configs = [ModelConfig(8, "autoregressive", cell), ModelConfig(8, "no_input", cell)]
    torch.manual_seed(1)
    group = RepeatRNN(configs)
    tokens, lengths = torch.randint(0, 30, (2, 4, 9)), torch.tensor([[9, 2, 5, 3], [4, 9, 9, 2]])
    h = group.encode(tokens, lengths)
    assert h.shape == (2, 4, configs[0].state_size)
    logits = group.decode(h, tokens, lengths=lengths)
    for k in range(2):
        alone = RepeatRNN(configs[k]).load_members([group.member_state(k)])
        torch.testing.assert_close(alone.encode(tokens[k:k + 1], lengths[k:k + 1])[0], h[k])
        torch.testing.assert_close(alone.decode(h[k:k + 1], tokens[k:k + 1], lengths=lengths[k:k + 1])[0], logits[k])


def test_lstm_state_is_h_and_c():
    model = RepeatRNN(ModelConfig(8, cell="lstm"))
    assert model.state_size == 16 and model.rnn.weight_ih_l0.shape == (1, 32, 8)
    with pytest.raises(ValueError, match="cell"):
        ModelConfig(8, cell="transformer")
    with pytest.raises(ValueError, match="cell"):
        RepeatRNN([ModelConfig(8, cell="lstm"), ModelConfig(8)])


def test_a_gru_config_keeps_its_cache_key():
    """Fields added after entries were shipped (``cell``, ``Budget.floor``) must not move those
    entries' keys while they hold the old value, and must move them when they do not."""
    config = RNNConfig(64, "autoregressive", 0, Budget(40_000, 500, 4_000, 4_000, 0.01))
    assert (config.cell, config.budget.floor) == ("gru", None)
    # the key of this config before RNNConfig had a cell (the shipped laptop N = 64 entry of CODE_VERSION 4)
    assert rnn_hash(config) == "29258b7282cc"
    lstm = replace(config, cell="lstm")
    assert rnn_hash(lstm) != "29258b7282cc"
    assert lstm.label == "lstm-N64-autoregressive-s0" and config.label == "N64-autoregressive-s0"
    floored = replace(config, budget=replace(config.budget, floor=0.05))
    assert rnn_hash(floored) != "29258b7282cc"
    # only the named fields at their old value are left out: another None or "gru" is hashed
    assert cache.config_hash({"a": None}) != cache.config_hash({}) != cache.config_hash({"b": "gru"})


def test_extension_profiles_under_smoke_keep_smoke_sizes():
    smoke = get_profile("smoke")
    lstm, grid = extension(smoke, "lstm"), extension(smoke, "grid")
    assert (lstm.cell, lstm.sizes, lstm.gru) == ("lstm", smoke.sizes, smoke.gru)
    assert grid.methods == ("linear_unigram", "linear_bigram", "onion_unigram") and grid.cell == "gru"
    assert extension(get_profile("laptop"), "elman") is get_profile("elman")
    # the grid reuses the laptop's models: same configs, so the same cache entries
    laptop, full_grid = get_profile("laptop"), get_profile("grid")
    assert set(laptop.sizes) < set(full_grid.sizes)
    assert RNNConfig.from_profile(full_grid, 64, "no_input", 1) == RNNConfig.from_profile(laptop, 64, "no_input", 1)
    gpu, gpu_grid = get_profile("gpu"), get_profile("gpu_grid")  # and its GPU half the gpu profile's
    assert RNNConfig.from_profile(gpu_grid, 512, "autoregressive", 0) == RNNConfig.from_profile(gpu, 512, "autoregressive", 0)


@pytest.mark.parametrize("cell", ["lstm", "elman", *sorted(INPUT_GATED)])
def test_other_cells_train_and_are_analysed_through_the_cache(cache_root, cell):
    profile = extension(get_profile("smoke"), cell).check(sizes=[16], variants=["autoregressive"])
    grus, analyses = missing_jobs(profile, ["onion_unigram", "probe_gru_ar"])
    assert [j.label for j in grus] == [f"{cell}-N16-autoregressive-s0"]
    run_jobs(grus + analyses, workers=1)
    assert missing_jobs(profile, ["onion_unigram", "probe_gru_ar"]) == ([], [])
    config = RNNConfig.from_profile(profile, 16, "autoregressive", 0)
    model, manifest = get_rnn(config, device="cpu")
    assert model.config.cell == cell and manifest["config"]["cell"] == cell
    assert (cache_root / "gru" / f"{config.label}-{rnn_hash(config)}").is_dir()
    module, analysis = get_analysis(config, AnalysisConfig.from_profile(profile, "onion_unigram", config), device="cpu")
    assert module.embedding.shape[-1] == model.state_size  # the onion acts on the whole state ([h, c] for an LSTM)
    assert analysis["metrics"]["steps"] >= profile.analysis.min_steps

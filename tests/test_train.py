import time
from dataclasses import asdict, replace

import pytest
import torch

from onion_gru import cache
from onion_gru.train import RNNConfig, evaluate, get_rnn, get_rnns, train_rnns
from onion_gru.loop import BatchSampler, optimizer
from onion_gru.data import load
from onion_gru.model import RepeatRNN
from onion_gru.profiles import Budget

TINY = RNNConfig(hidden_size=16, variant="autoregressive", seed=0, budget=Budget.fixed(12, 6), train_size=5_000)


def test_tiny_model_learns_short_sequences_quickly(monkeypatch):
    """Lengths 2-3 only: a small GRU must reach 95% exact match within 30 seconds."""
    from onion_gru import data
    spec = data.DatasetSpec(2, 3, 20_000, 7)
    tokens, lengths = (torch.from_numpy(a) for a in data.generate(spec))
    torch.manual_seed(0)
    from onion_gru.model import ModelConfig, RepeatRNN, sequence_loss
    from onion_gru.loop import batch
    model = RepeatRNN(ModelConfig(64))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    sampler, start = BatchSampler(len(tokens) - 1000, 256, 0), time.time()
    accuracy = 0.0
    while time.time() - start < 30 and accuracy < 0.95:
        for _ in range(50):
            x, l = batch(tokens, lengths, next(sampler)[None], "cpu")
            loss = sequence_loss(model(x, l), x, l).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        accuracy = evaluate(model, tokens[-1000:], lengths[-1000:])[0]["accuracy"]
    assert accuracy >= 0.95, f"{accuracy:.3f} after {time.time() - start:.0f} s"


def test_same_seed_gives_identical_weights():
    a, _ = train_rnns([TINY], "cpu", eval_size=100)
    b, _ = train_rnns([TINY], "cpu", eval_size=100)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    c, _ = train_rnns([replace(TINY, seed=1)], "cpu", eval_size=100)
    assert not torch.equal(a.rnn.weight_hh_l0, c.rnn.weight_hh_l0)


def test_a_gru_trained_in_a_group_is_the_gru_trained_alone(monkeypatch):
    """float64, so that only the products' rounding differs: each member of a group of three (mixed
    variants and seeds, each with its own batches) ends where it ends trained alone."""
    monkeypatch.setattr(torch, "get_default_dtype", torch.get_default_dtype)  # restored below
    configs = [TINY, replace(TINY, variant="no_input", seed=1), replace(TINY, seed=2)]
    torch.set_default_dtype(torch.float64)
    try:
        group, metrics = train_rnns(configs, "cpu", eval_size=100)
        for k, config in enumerate(configs):
            alone, (alone_metrics,) = train_rnns([config], "cpu", eval_size=100)
            start = RepeatRNN(config.model_config)
            for name, value in alone.member_state(0).items():
                torch.testing.assert_close(group.member_state(k)[name], value, rtol=0, atol=1e-10)
            assert (group.member_state(k)["rnn.weight_hh_l0"] - start.member_state(0)["rnn.weight_hh_l0"]).abs().max() > 1e-3
            assert metrics[k]["curve"][-1]["loss"] == pytest.approx(alone_metrics["curve"][-1]["loss"], abs=1e-10)
    finally:
        torch.set_default_dtype(torch.float32)


def test_a_gru_stopped_by_the_rule_is_the_gru_trained_to_that_step():
    """min_gain 2 (no curve gains that much): the rule stops at min_steps, 12 of a 60-step cap; the
    model kept, its curve and its step count are those of a fixed 12-step run."""
    ruled = replace(TINY, budget=Budget(60, 6, min_steps=12, patience=6, min_gain=2.0, curve_size=100))
    model, (metrics,) = train_rnns([ruled], "cpu", eval_size=100)
    fixed, (fixed_metrics,) = train_rnns([replace(TINY, budget=Budget.fixed(12, 6, curve_size=100))], "cpu", eval_size=100)
    assert metrics["steps"] == fixed_metrics["steps"] == 12 and [p["step"] for p in metrics["curve"]] == [6, 12]
    for (name, value), other in zip(model.state_dict().items(), fixed.state_dict().values()):
        assert torch.equal(value, other), name


def test_metrics_have_curve_lengths_and_longer_sets():
    _, (metrics,) = train_rnns([TINY], "cpu", eval_size=200)
    assert [p["step"] for p in metrics["curve"]] == [6, 12]
    assert set(metrics["valid"]["by_length"]) == set(range(2, 10))
    assert set(metrics["longer"]) == {"valid_longer_1", "valid_longer_2", "valid_longer_1_norepeat"}
    assert 0 <= metrics["valid"]["greedy_accuracy"] <= 1


def test_sampler_covers_each_epoch_once():
    sampler = BatchSampler(10, 5, 0)
    first_epoch = torch.cat([next(sampler), next(sampler)])
    assert sorted(first_epoch.tolist()) == list(range(10))


def test_fused_adamw_is_the_default_adamw():
    """loop.optimizer's fused AdamW takes the same steps as the default one (up to float rounding)."""
    from onion_gru.model import ModelConfig, RepeatRNN, sequence_loss
    tokens, lengths = load("valid")
    weights = []
    for make in (lambda m: torch.optim.AdamW(m.parameters(), lr=TINY.lr, weight_decay=TINY.weight_decay),
                 lambda m: optimizer(m, TINY.lr, TINY.weight_decay)):
        torch.manual_seed(0)
        model = RepeatRNN(ModelConfig(16))
        start, opt = model.rnn.weight_hh_l0.detach().clone(), make(model)
        for i in range(5):
            x, l = tokens[None, 64 * i:64 * (i + 1)].long(), lengths[None, 64 * i:64 * (i + 1)].long()
            opt.zero_grad()
            sequence_loss(model(x, l), x, l).sum().backward()
            opt.step()
        weights.append(model.rnn.weight_hh_l0.detach().clone())
    assert (weights[0] - start).abs().max() > 1e-3  # both took real steps
    torch.testing.assert_close(*weights, rtol=0, atol=1e-6)


def test_get_grus_trains_only_the_missing_members(cache_root):
    """One GRU cached first; asking for it and another trains only the other, and each entry is
    the model trained alone (float32, same machine: the same bits)."""
    other = replace(TINY, seed=1)
    first, _ = get_rnn(TINY, "cpu", eval_size=100)
    group, manifests = get_rnns([TINY, other], "cpu", eval_size=100)
    assert torch.equal(group.member_state(0)["rnn.weight_hh_l0"], first.member_state(0)["rnn.weight_hh_l0"])
    assert [m["metrics"]["group_size"] for m in manifests] == [1, 1]
    assert len(list(cache_root.glob("gru/*/manifest.json"))) == 2


def test_get_gru_caches_and_freezes(cache_root):
    model, manifest = get_rnn(TINY, "cpu", eval_size=100)
    assert not any(p.requires_grad for p in model.parameters())
    entry = cache.entry_dir("gru", TINY.label, asdict(TINY))
    assert entry.parent.parent == cache_root and (entry / "manifest.json").exists()
    assert manifest["config"] == asdict(TINY) and manifest["metrics"]["curve"]
    again, _ = get_rnn(TINY, "cpu")  # a hit: same weights, no training
    assert torch.equal(again.rnn.weight_hh_l0, model.rnn.weight_hh_l0)


def test_paper_profile_step_count_is_two_thirds_of_the_authors():
    from onion_gru.bench import step_counts
    counts = step_counts()  # 60 GRUs x 40k + 60 x 8 analyses x 60k, against 480 x (40k + 60k)
    assert (counts["grus"], counts["our_steps"], counts["authors_steps"]) == (60, 31_200_000, 48_000_000)
    assert counts["ratio"] <= 2 / 3


def test_snapshots_of_one_run_are_the_runs_cut_short():
    """Configs that differ only in a fixed budget's length train as one run per (variant, seed): each
    member is, bit for bit, the same runs (the same group) trained for its own number of steps, with
    its curve up to there."""
    long, short = replace(TINY, budget=Budget.fixed(18, 6)), replace(TINY, budget=Budget.fixed(6, 6))
    configs = [long, short, replace(short, seed=1)]
    group, metrics = train_rnns(configs, "cpu", eval_size=100)
    assert [m["group_size"] for m in metrics] == [2, 2, 2]  # two runs (seeds 0 and 1), three GRUs
    for k, config in enumerate(configs):
        pair = [replace(config, seed=0), replace(config, seed=1)]  # the same two runs, this long
        alone, alone_metrics = train_rnns(pair, "cpu", eval_size=100)
        for name, value in alone.member_state(config.seed).items():
            assert torch.equal(group.member_state(k)[name], value), (config.budget.max_steps, name)
        assert len(metrics[k]["curve"]) == len(alone_metrics[config.seed]["curve"]) == config.budget.max_steps // 6
        assert metrics[k]["curve"] == [{**p, "seconds": q["seconds"]} for p, q in
                                       zip(alone_metrics[config.seed]["curve"], metrics[k]["curve"])]
        assert metrics[k]["steps"] == config.budget.max_steps
        assert metrics[k]["valid"] == alone_metrics[config.seed]["valid"]
    assert metrics[1]["snapshot_of"] == metrics[2]["snapshot_of"] == 18 and "snapshot_of" not in metrics[0]
    assert group.member_state(0)["rnn.weight_hh_l0"].ne(group.member_state(1)["rnn.weight_hh_l0"]).any()
    with pytest.raises(ValueError, match="fixed budget"):
        train_rnns([TINY, replace(TINY, budget=Budget(12, 6, min_steps=6, patience=6, min_gain=0.1))], "cpu")

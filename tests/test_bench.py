import math

import pytest
import torch

from onion_gru import bench
from onion_gru.analysis import METHODS


def test_bench_table_has_every_required_row_and_its_ratios_are_its_timings():
    """`make bench` on CPU: ours and the nn.GRU reference per size, the matmul ceiling, one row per
    stage-2 method, and the large sizes' rows (each orthogonal map against matrix_exp, bf16 against
    fp32); every derived column is computed from the timed ones as documented."""
    from onion_gru import data
    table = bench.run(devices=[torch.device("cpu")], sizes=(8,), large_sizes=(12,))
    whats = set(table["what"])
    assert {"matmul 2048^3", "GRU train step (ours)", "GRU train step (nn.GRU reference)",
            "GRU train step (ours), fp32", "GRU train step (ours), bf16 products"} <= whats
    assert {f"stage-2 step: {m}" for m in METHODS} <= whats
    row = lambda what: table[table["what"] == what].iloc[0]
    # (with more than one thread the large rows come again for one thread: named so, tested below)
    what = table["what"]
    maps = table[what.str.startswith("stage-2 step: linear_unigram, ") & ~what.str.endswith("thread")].set_index("what")
    assert list(maps.index) == ["stage-2 step: linear_unigram, matrix_exp", "stage-2 step: linear_unigram, cayley"]
    assert maps["speedup"].tolist() == pytest.approx(maps.loc["stage-2 step: linear_unigram, matrix_exp", "ms"] / maps["ms"])
    fp32, bf16 = row("GRU train step (ours), fp32"), row("GRU train step (ours), bf16 products")
    assert bf16["speedup"] == pytest.approx(fp32["ms"] / bf16["ms"])
    ours, ref, peak = row("GRU train step (ours)"), row("GRU train step (nn.GRU reference)"), row("matmul 2048^3")
    assert math.isclose(ours["speedup"], ref["ms"] / ours["ms"], rel_tol=1e-9)
    _, lengths = data.load("train", size=50_000)
    mean_tokens = 2 * lengths.float().mean().item() * 256
    assert ours["gflops"] == pytest.approx(bench.gru_flops(8, mean_tokens) / (ours["ms"] / 1e3) / 1e9)
    assert ours["pct_of_matmul"] == pytest.approx(100 * ours["gflops"] / peak["gflops"])
    group = table[table["what"].str.startswith("stage-2 group step")].iloc[0]
    assert group["ms"] > 0 and group["speedup"] > 0


def test_large_rows_are_timed_again_per_thread_count_and_give_the_count_back():
    """`make bench` times the large rows with its threads and again with one: the second set is named
    by its count (here the test's own thread count, then one: never more threads than the tests have)."""
    tokens, lengths = bench.data.load("train", size=2_000)
    before = torch.get_num_threads()
    rows = bench.large_rows(torch.device("cpu"), tokens, lengths, sizes=(12,), threads=(None, 1))
    assert [r["what"] for r in rows] == [f"{what}{suffix}" for suffix in ("", ", 1 thread") for what in (
        "GRU train step (ours), fp32", "GRU train step (ours), bf16 products",
        "stage-2 step: linear_unigram, matrix_exp", "stage-2 step: linear_unigram, cayley")]
    assert all(r["ms"] > 0 for r in rows) and torch.get_num_threads() == before


def test_time_interleaved_calls_each_step_in_turns():
    calls = []
    medians = bench.time_interleaved([lambda: calls.append("a"), lambda: calls.append("b")],
                                     torch.device("cpu"), repeats=3, n=2, warmup=1)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert len(medians) == 2 and all(m > 0 for m in medians)


def test_reference_and_ours_compute_the_same_loss():
    """The reference is the same model written directly: with our weights it gives our logits."""
    torch.manual_seed(0)
    ours = bench.RepeatRNN(bench.ModelConfig(12))
    ref = bench.DirectSeq2Seq(12)
    ref.load_state_dict(ours.member_state(0))  # same parameter names and shapes
    x, lengths = torch.randint(0, 30, (5, 7)), torch.tensor([7, 3, 5, 2, 7])
    mask = torch.arange(7)[None] < lengths[:, None]
    torch.testing.assert_close(ref(x, lengths)[mask], ours(x[None], lengths[None])[0][mask])


def test_train_stage_rows_train_into_a_temporary_cache_and_restore_it(cache_root, monkeypatch):
    import os
    before = os.environ.get("ONION_GRU_DATA")
    monkeypatch.setattr(bench, "STAGE_LAYOUTS", ((1, 1), (1, 2)))  # one worker: no processes to spawn
    rows = bench.train_stage_rows(sizes=(8,), steps=4)
    assert [r["what"].split(",")[1].strip() for r in rows] == ["groups of one", "group of 2"]
    assert all(r["steps_per_s"] > 0 for r in rows) and rows[0]["speedup"] == 1.0
    assert os.environ.get("ONION_GRU_DATA") == before
    assert not any(cache_root.rglob("manifest.json"))  # nothing landed in the caller's cache


def test_the_gpu_script_writes_its_bench_rows(tmp_path):
    """scripts/gpu_profile.py's bench (run on the CPU here, tiny sizes): the rows are written."""
    import importlib.util
    import pandas as pd
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("gpu_profile", Path(__file__).parents[1] / "scripts" / "gpu_profile.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.write_bench(tmp_path / "gpu_bench.csv", torch.device("cpu"), sizes=(8,), k=2)
    table = pd.read_csv(tmp_path / "gpu_bench.csv")
    assert set(table["device"]) == {"cpu"} and len(table) == 3
    assert table.iloc[-1]["what"].startswith("paper profile") and table.iloc[-1]["value"] > 0

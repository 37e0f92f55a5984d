import json
import warnings

import pytest
import torch

from onion_gru import cache, checkpoint

CONFIG = {"hidden_size": 4, "seed": 0}


def compute_counter():
    calls = []

    def compute():
        calls.append(1)
        return {"w": torch.arange(6.0) + len(calls)}, {"accuracy": 0.5}
    return compute, calls




def recompute(kind, label, config, compute):
    """What ``train`` does: read, or compute under the entry's lock and write."""
    return checkpoint.load_or_compute(kind, [(label, config)], lambda missing, _: tuple([x] for x in compute()))[0]


def test_hit_and_miss(cache_root):
    compute, calls = compute_counter()
    state, manifest = recompute("gru", "x", CONFIG, compute)
    assert len(calls) == 1 and manifest["metrics"] == {"accuracy": 0.5}
    state2, _ = recompute("gru", "x", CONFIG, compute)
    assert len(calls) == 1 and torch.equal(state["w"], state2["w"])
    manifest = json.loads((cache.entry_dir("gru", "x", CONFIG) / "manifest.json").read_text())
    assert manifest["config"] == CONFIG and len(manifest["weights_sha256"]) == 64
    assert {"torch", "python", "threads"} <= set(manifest["environment"])


def test_config_change_is_a_miss(cache_root):
    compute, calls = compute_counter()
    recompute("gru", "x", CONFIG, compute)
    recompute("gru", "x", {**CONFIG, "seed": 1}, compute)
    assert len(calls) == 2
    assert cache.config_hash(CONFIG) != cache.config_hash({**CONFIG, "seed": 1})


def test_code_version_is_in_the_key(monkeypatch):
    before = cache.config_hash(CONFIG)
    monkeypatch.setattr(cache, "CODE_VERSION", cache.CODE_VERSION + 1)
    assert cache.config_hash(CONFIG) != before


def test_reading_an_entry_without_weights_leaves_its_manifest(cache_root):
    """A manifest-only entry (a GPU run's result) is a result: every reader leaves it, and a
    computation that needs its weights stops and says so."""
    from onion_gru.results import MissingResults, load_rnn
    from onion_gru.profiles import get_profile
    from onion_gru.train import RNNConfig, get_rnn, rnn_entry
    smoke = get_profile("smoke")
    gru = RNNConfig.from_profile(smoke, 16, "autoregressive", 0)
    cache.put("gru", *rnn_entry(gru), {"w": torch.zeros(1)}, {"accuracy": 0.5}, seconds=1.0)
    path = cache.entry_dir("gru", *rnn_entry(gru))
    (path / "weights.pt").unlink()
    with pytest.warns(UserWarning, match="weights missing"):
        with pytest.raises(MissingResults):
            load_rnn(smoke, 16, "autoregressive", 0)  # the notebooks' read path
    with pytest.warns(UserWarning), pytest.raises(cache.Missing, match="shipped as results without weights"):
        get_rnn(gru, device="cpu")  # train's path: would compute it, but it is a result
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json"]
    assert cache.state("gru", *rnn_entry(gru)) == cache.RESULTS_ONLY and cache.is_done("gru", *rnn_entry(gru))
    assert cache.read_manifest("gru", *rnn_entry(gru))["metrics"] == {"accuracy": 0.5}


def test_a_folder_without_manifest_is_a_write_in_progress_and_left_alone(cache_root):
    path = cache.entry_dir("gru", "x", CONFIG)
    path.mkdir(parents=True)
    torch.save({"w": torch.zeros(1)}, path / "weights.pt")
    assert cache.get_many("gru", [("x", CONFIG)]) == [None]
    assert cache.state("gru", "x", CONFIG) == cache.IN_PROGRESS and not cache.is_done("gru", "x", CONFIG)
    assert [p.name for p in path.iterdir()] == ["weights.pt"]


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_a_damaged_entry_is_left_by_readers_and_set_aside_by_the_command_that_recomputes_it(cache_root, damage):
    compute, calls = compute_counter()
    recompute("gru", "x", CONFIG, compute)
    weights = cache.entry_dir("gru", "x", CONFIG) / "weights.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-10] + bytes(10))
    with pytest.warns(UserWarning, match="weights altered"):
        assert cache.get_many("gru", [("x", CONFIG)]) == [None]
    assert weights.read_bytes() != data and cache.state("gru", "x", CONFIG) == cache.DAMAGED  # left as it was
    with pytest.warns(UserWarning, match="weights altered"):
        state, _ = recompute("gru", "x", CONFIG, compute)
    assert torch.equal(state["w"], torch.arange(6.0) + 2)  # computed anew (the counter's second call)
    (aside,) = (cache_root / "damaged" / "gru").iterdir()
    assert aside.name.startswith(cache.entry_key("x", CONFIG))
    assert "weights altered" in (aside / "WHY.txt").read_text() and (aside / "manifest.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry is healthy
        assert cache.get_many("gru", [("x", CONFIG)])[0] is not None


LOCK_HOLDER = """
import sys
from onion_gru import checkpoint
from onion_gru.profiles import get_profile
from onion_gru.train import RNNConfig, rnn_entry
gru = RNNConfig.from_profile(get_profile("smoke"), 16, "autoregressive", 0)
with checkpoint.writing("gru", [rnn_entry(gru)]):
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_two_processes_never_compute_one_entry(tmp_path):
    """A process holds the entry's lock (as a worker training it does); ``train`` on the same entry
    refuses that group and says who holds it; once the holder is gone, the same command computes it."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "ONION_GRU_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    args = [sys.executable, "-m", "onion_gru", "train", "--profile", "smoke", "--sizes", "16",
            "--variants", "autoregressive", "--methods", "none", "--workers", "1"]
    refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 0, refused.stderr
    assert f"is being computed by pid {holder.pid}" in refused.stdout and "0 of 1 jobs finished" in refused.stdout
    assert not list((tmp_path / "data").glob("gru/*/manifest.json"))
    holder.communicate("\n", timeout=60)
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert "1 of 1 jobs finished" in done.stdout and len(list((tmp_path / "data").glob("gru/*/manifest.json"))) == 1


def test_get_many_reads_each_entry_and_marks_the_missing(cache_root):
    cache.put("gru", "a", CONFIG, {"w": torch.ones(2)}, {"accuracy": 1.0}, seconds=1.0)
    found = cache.get_many("gru", [("b", CONFIG), ("a", CONFIG), ("a", {**CONFIG, "seed": 1})])
    assert found[0] is None and found[2] is None
    state, manifest = found[1]
    assert torch.equal(state["w"], torch.ones(2)) and manifest["metrics"] == {"accuracy": 1.0}


def test_manifest_records_the_cpu_and_the_mkl_branch(cache_root):
    """What decides the bits of a result (docs/reproducibility.md) is in its manifest."""
    import os
    import sys
    _, manifest = cache.put("gru", "x", {"a": 1}, {"w": torch.zeros(2)}, {}, 0.0)
    env = manifest["environment"]
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["mkl_cbwr"] == os.environ.get("MKL_CBWR")  # None: MKL's own choice per CPU
    if sys.platform == "linux":
        assert "family" in env["cpu_model"] and "cache" in env["cpu_model"]

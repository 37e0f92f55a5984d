import json
import warnings

import pytest
import torch

from onion_gru import cache

CONFIG = {"hidden_size": 4, "seed": 0}


def compute_counter():
    calls = []

    def compute():
        calls.append(1)
        return {"w": torch.arange(6.0) + len(calls)}, {"accuracy": 0.5}
    return compute, calls


def get_or_compute(kind, label, config, compute):
    """What the training code does with the cache: read, or compute and put."""
    (found,) = cache.get_many(kind, [(label, config)])
    return found if found is not None else cache.put(kind, label, config, *compute(), seconds=1.0)


def test_hit_and_miss(cache_root):
    compute, calls = compute_counter()
    state, manifest = get_or_compute("gru", "x", CONFIG, compute)
    assert len(calls) == 1 and manifest["metrics"] == {"accuracy": 0.5}
    state2, _ = get_or_compute("gru", "x", CONFIG, compute)
    assert len(calls) == 1 and torch.equal(state["w"], state2["w"])
    manifest = json.loads((cache.entry_dir("gru", "x", CONFIG) / "manifest.json").read_text())
    assert manifest["config"] == CONFIG and len(manifest["weights_sha256"]) == 64
    assert {"torch", "python", "threads"} <= set(manifest["environment"])


def test_config_change_is_a_miss(cache_root):
    compute, calls = compute_counter()
    get_or_compute("gru", "x", CONFIG, compute)
    get_or_compute("gru", "x", {**CONFIG, "seed": 1}, compute)
    assert len(calls) == 2
    assert cache.config_hash(CONFIG) != cache.config_hash({**CONFIG, "seed": 1})


def test_code_version_is_in_the_key(monkeypatch):
    before = cache.config_hash(CONFIG)
    monkeypatch.setattr(cache, "CODE_VERSION", cache.CODE_VERSION + 1)
    assert cache.config_hash(CONFIG) != before


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "delete"])
def test_damaged_entry_is_detected_and_recomputed(cache_root, damage):
    compute, calls = compute_counter()
    get_or_compute("gru", "x", CONFIG, compute)
    weights = cache.entry_dir("gru", "x", CONFIG) / "weights.pt"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        weights.write_bytes(data[:-10] + bytes(10))
    else:
        weights.unlink()
    with pytest.warns(UserWarning, match="damaged"):
        state, _ = get_or_compute("gru", "x", CONFIG, compute)
    assert (cache.entry_dir("gru", "x", CONFIG) / "manifest.json").exists()
    assert len(calls) == 2 and torch.equal(state["w"], torch.arange(6.0) + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten entry is healthy
        get_or_compute("gru", "x", CONFIG, compute)


def test_unfinished_entry_is_not_used(cache_root):
    """Weights without a manifest (a job killed between the two writes) count as missing."""
    path = cache.entry_dir("gru", "x", CONFIG)
    path.mkdir(parents=True)
    torch.save({"w": torch.zeros(1)}, path / "weights.pt")
    assert not cache.is_done("gru", "x", CONFIG)
    compute, calls = compute_counter()
    get_or_compute("gru", "x", CONFIG, compute)
    assert len(calls) == 1


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

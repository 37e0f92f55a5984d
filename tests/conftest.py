import os

import pytest
import torch

# Both cores by default; OMP_NUM_THREADS=1 when something else (a training run) holds a core, since
# oversubscribed cores make torch spin-wait (two 2-thread processes on 2 cores ran 38x slower).
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", min(2, os.cpu_count() or 1))))


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """An empty cache for the test: nothing is read from or written to the project's data/."""
    monkeypatch.setenv("ONION_GRU_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(autouse=True, scope="session")
def project_cache_untouched():
    """No test may write into the shipped cache under data/ (smoke models belong under build/)."""
    from onion_gru.cache import DEFAULT_ROOT
    before = sorted(p.name for p in DEFAULT_ROOT.glob("*/*"))
    yield
    after = sorted(p.name for p in DEFAULT_ROOT.glob("*/*"))
    assert after == before, f"tests wrote into {DEFAULT_ROOT}: {sorted(set(after) - set(before))}"

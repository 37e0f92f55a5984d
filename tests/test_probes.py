"""Known-answer tests of the probes on hand-built states (tests/handbuilt.py)."""
import pytest
import torch

from onion_gru.toy import LinearStore, OnionStore
from onion_gru.analysis import PROBE_METHODS, AnalysisConfig, train_methods
from onion_gru.probes import OnionProbe
from onion_gru.profiles import Budget
from test_interventions import short_sets


def fit(store, method, steps=800, short=True):
    config = AnalysisConfig(method, "handbuilt", Budget.fixed(steps), seed=0, train_size=20_000, eval_size=500, lr=1e-2)
    if short:
        train, valid = short_sets()
        return train_methods(store, [config], train_data=train, eval_data={"short": valid})[1][0]
    return train_methods(store, [config])[1][0]


@pytest.mark.parametrize("method", ["probe_linear", "probe_mlp"])
def test_all_at_once_probes_read_the_linear_store_at_every_length(method):
    assert fit(LinearStore(), method, short=False)["accuracy"] >= 0.95


@pytest.mark.parametrize("method", PROBE_METHODS)
def test_every_probe_reads_short_sequences_from_the_linear_store(method):
    assert fit(LinearStore(), method)["accuracy"] >= 0.95


@pytest.mark.parametrize("method", ["probe_onion", "probe_gru_ar"])
def test_peeling_probes_read_the_onion_store(method):
    assert fit(OnionStore(0.4), method)["accuracy"] >= 0.95


def test_linear_probe_fails_on_the_onion_store():
    """The second token is the second-largest coordinate: no linear read-out finds it."""
    metrics = fit(OnionStore(0.4), "probe_linear")
    assert metrics["accuracy"] < 0.1, metrics["short"]


def test_onion_probe_peels_with_the_given_tokens():
    """With E one-hot and s(p) = gamma^p, the probe's state after step p is exactly the store's
    remainder, so a classifier that picks the largest coordinate reads every position."""
    store, probe = OnionStore(0.4), OnionProbe(30)
    with torch.no_grad():
        probe.embedding.copy_(torch.eye(30)[None])
        probe.scale.gamma.fill_(0.4), probe.scale.g.fill_(1.0), probe.scale.l.zero_(), probe.scale.b.zero_()
    probe.norm, probe.classifier = torch.nn.Identity(), torch.nn.Identity()
    x = torch.randint(0, 30, (1, 64, 9))
    h = store.encode(x, torch.full((1, 64), 9))
    assert torch.equal(probe(h, x).argmax(-1), x)
    assert torch.equal(probe.generate(None, h, 9), x)

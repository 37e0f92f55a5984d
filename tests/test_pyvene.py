"""The pyvene glue (optional extra ``pyvene``): our trained interventions, loaded into pyvene, give
the decoder outputs ours give on the same examples and corruptions."""
import pytest
import torch

pv = pytest.importorskip("pyvene")

from onion_gru.interventions import LinearBigram, LinearUnigram, OnionUnigram  # noqa: E402
from onion_gru.model import ModelConfig, RepeatRNN  # noqa: E402
from onion_gru.pyvene_glue import OnionIntervention, StateModel, intervenable, linear_from_ours, the_intervention  # noqa: E402


def tiny_gru(variant="autoregressive"):
    torch.manual_seed(0)
    return RepeatRNN(ModelConfig(16, variant)).eval().requires_grad_(False)


def sequences(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 30, (n, 9), generator=g), torch.randint(2, 10, (n,), generator=g), g


@pytest.mark.parametrize("variant", ["autoregressive", "no_input"])
def test_state_model_decodes_what_the_gru_decodes(variant):
    gru, (x, lengths, _) = tiny_gru(variant), sequences()
    expected = gru.decode(gru.encode(x[None], lengths[None]), x[None], lengths=lengths[None])[0]
    torch.testing.assert_close(StateModel(gru)(x, lengths), expected, rtol=0, atol=0)


def test_onion_intervention_in_pyvene_is_ours():
    gru, (x, lengths, g) = tiny_gru(), sequences()
    torch.manual_seed(2)
    ours = OnionUnigram(16)
    with torch.no_grad():  # away from the initialisation, so that every parameter matters
        for p in ours.parameters():
            p.add_(0.3 * torch.randn_like(p))
    corrupted, original, new, position = ours.corrupt(x, lengths, g)
    h = gru.encode(corrupted[None], lengths[None])
    expected = gru.decode(ours.repair(h, original[None], new[None], position[None]), x[None], lengths=lengths[None])[0]
    wrapped = intervenable(StateModel(gru), OnionIntervention)
    the_intervention(wrapped).load_ours(ours)
    _, got = wrapped({"tokens": corrupted, "lengths": lengths, "targets": x}, unit_locations={"base": 0},
                     intervention_additional_kwargs={"original": original, "replacement": new, "position": position})
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert (got - gru.decode(h, x[None], lengths=lengths[None])[0]).abs().max() > 1e-3  # the repair did something


@pytest.mark.parametrize("cls", [LinearUnigram, LinearBigram])
def test_linear_intervention_in_pyvene_rotated_space_is_ours(cls):
    """A rotation far from the identity and an assignment that mixes variables, coordinates owned by
    no variable included: pyvene's RotatedSpaceIntervention holding them patches as ours does."""
    gru = tiny_gru()
    x, _, g = sequences(16)
    lengths = torch.full((16,), 9)
    torch.manual_seed(3)
    ours = cls(16).eval()
    with torch.no_grad():
        ours.patch.rotation.weight = torch.linalg.qr(torch.randn(16, 16))[0][None]
        ours.patch.mask_logits.normal_()
        ours.patch.mask_logits[0, :3, -1] = 5.0  # three coordinates owned by no variable
    n_variables = ours.patch.n_variables
    owners = ours.patch.assignment()[0].argmax(-1)
    assert len(set(owners.tolist())) > 4 and (owners == n_variables).any()
    if cls is LinearUnigram:
        corrupted, partner, intervene = ours.corrupt(x, lengths, g)
        source_tokens = corrupted[partner]
    else:
        corrupted, source_tokens, intervene = ours.corrupt(x, lengths, g)
    base, source = (gru.encode(t[None], lengths[None]) for t in (corrupted, source_tokens))
    patched = ours.patch(base, source, intervene[None])
    expected = gru.decode(patched, x[None], lengths=lengths[None])[0]
    wrapped = linear_from_ours(StateModel(gru), ours)
    subspaces = [[v for v in range(n_variables) if intervene[b, v]] for b in range(16)]
    _, got = wrapped({"tokens": corrupted, "lengths": lengths, "targets": x},
                     [{"tokens": source_tokens, "lengths": lengths}], unit_locations={"sources->base": 0},
                     subspaces=[subspaces])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_docs_example_repairs_the_shipped_gru(monkeypatch):
    """docs/pyvene.md's example, run as written on the shipped N = 64 GRU (the shipped cache, whatever
    cache the test run names): the onion repair makes the decoder write the original sequence again."""
    from pathlib import Path
    from onion_gru.cache import DEFAULT_ROOT
    monkeypatch.setenv("ONION_GRU_DATA", str(DEFAULT_ROOT))
    text = (Path(__file__).resolve().parents[1] / "docs" / "pyvene.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code, "docs/pyvene.md", "exec"), namespace)
    assert torch.equal(namespace["logits"].argmax(-1), namespace["x"])


@pytest.mark.parametrize("store, expected", [("linear", 1.0), ("onion", 0.0)])
def test_pyvene_das_finds_the_linear_store_and_not_the_onion(store, expected):
    """Known answers: position 4 of the hand-built linear store lives in its own 8 coordinates, which
    a rank-8 DAS finds (measured: 1.00 after 200 steps); in the onion store it shares the 30
    directions of every position, and DAS fails (0.00, the floor about 0.03)."""
    from onion_gru.das import DASConfig
    from onion_gru.pyvene_glue import train_das
    from onion_gru.toy import LinearStore, OnionStore
    model = LinearStore() if store == "linear" else OnionStore(0.4)
    _, metrics = train_das(model, DASConfig("toy", 4, 8, steps=200, batch_size=64, lr=1e-2, eval_size=500))
    assert abs(metrics["accuracy"] - expected) < 0.03 and metrics["floor"] < 0.06


def test_das_of_a_cached_gru_is_cached_once_and_read_back(cache_root):
    from onion_gru import cache, results
    from onion_gru.das import DASConfig, das_entry
    from onion_gru.pyvene_glue import get_das
    from onion_gru.profiles import get_profile
    from onion_gru.train import RNNConfig, get_rnn
    smoke = get_profile("smoke").check(sizes=[16], variants=["autoregressive"])
    gru = RNNConfig.from_profile(smoke, 16, "autoregressive", 0)
    with pytest.raises(cache.Missing):
        get_das(gru, DASConfig.of(gru, 0))  # never trains the GRU
    get_rnn(gru, device="cpu")
    assert DASConfig.of(gru, 0).rank == 2  # N / 8
    small = DASConfig(DASConfig.of(gru, 0).gru_hash, 0, 2, steps=20, batch_size=32, eval_size=100)
    metrics = get_das(gru, small)["metrics"]
    assert (metrics["position"], metrics["rank"]) == (0, 2) and 0 <= metrics["accuracy"] <= 1
    # the floor is the GRU's own teacher-forced exact match of the counterfactual, computed here
    # with our model alone: pairs i and 100 + i of the intervention set, position 0 from the source
    import torch
    from onion_gru import data
    model, _ = get_rnn(gru, device="cpu", train=False)
    tokens, _ = data.load("intervention")
    base, source = tokens[:100].long(), tokens[100:200].long()
    target, nine = base.clone(), torch.full((1, 100), 9)
    target[:, 0] = source[:, 0]
    with torch.no_grad():
        logits = model.decode(model.encode(base[None], nine), target[None])
    assert metrics["floor"] == pytest.approx((logits[0].argmax(-1) == target).all(-1).float().mean().item())
    assert cache.is_done("das", *das_entry(gru, small)) and get_das(gru, small, compute=False)["metrics"] == metrics
    assert results.das_results(smoke).empty  # the profile's own runs (1,000 steps) are other entries

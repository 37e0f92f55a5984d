"""The tiny fixture GRU (TransformerLens style): fixed weights must give the stored reference outputs."""
import json
from pathlib import Path

import torch

from onion_gru.model import ModelConfig, RepeatRNN

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_gru"


def load():
    meta = json.loads((FIXTURE / "meta.json").read_text())
    model = RepeatRNN(ModelConfig(meta["hidden_size"], meta["variant"]))
    model.load_members([torch.load(FIXTURE / "weights.pt", weights_only=True)])  # a single model's state dict
    return model, torch.load(FIXTURE / "reference.pt", weights_only=True)


def test_fixture_reproduces_reference_outputs():
    model, ref = load()
    with torch.no_grad():
        h = model.encode(ref["tokens"][None], ref["lengths"][None])
        torch.testing.assert_close(h[0], ref["h"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.decode(h, ref["tokens"][None])[0], ref["logits"], rtol=1e-5, atol=1e-5)
        assert torch.equal(model.generate(h, 8)[0], ref["greedy"])


def test_fixture_matches_a_hand_written_gru_cell():
    """PyTorch's gate equations (r, z, n; z keeps the old state), written out by hand."""
    model, ref = load()
    W_ih, W_hh = model.rnn.weight_ih_l0[0], model.rnn.weight_hh_l0[0]
    b_ih, b_hh = model.rnn.bias_ih_l0[0], model.rnn.bias_hh_l0[0]
    h = torch.zeros(8)
    with torch.no_grad():
        for token in ref["tokens"][0]:
            gi, gh = W_ih @ model.embedding.weight[0, token] + b_ih, W_hh @ h + b_hh
            r = torch.sigmoid(gi[:8] + gh[:8])
            z = torch.sigmoid(gi[8:16] + gh[8:16])
            n = torch.tanh(gi[16:] + r * gh[16:])
            h = (1 - z) * n + z * h
    torch.testing.assert_close(h, ref["h"][0], rtol=1e-5, atol=1e-6)


def test_the_fixture_script_regenerates_the_committed_fixture(tmp_path):
    """tests/fixtures/make_tiny_gru.py, run again: the same weights and metadata, and reference
    outputs equal to the committed ones to the tolerance above (they were computed by an earlier
    implementation of the same GRU)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_tiny_gru", FIXTURE.parent / "make_tiny_gru.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(tmp_path)
    assert json.loads((tmp_path / "meta.json").read_text())["hidden_size"] == 8
    assert {k: v for k, v in json.loads((tmp_path / "meta.json").read_text()).items() if k != "torch"} == \
        {k: v for k, v in json.loads((FIXTURE / "meta.json").read_text()).items() if k != "torch"}
    new, old = (torch.load(d / "weights.pt", weights_only=True) for d in (tmp_path, FIXTURE))
    assert new.keys() == old.keys() and all(torch.equal(new[k], old[k]) for k in new)
    new, old = (torch.load(d / "reference.pt", weights_only=True) for d in (tmp_path, FIXTURE))
    for name in ("tokens", "lengths", "greedy"):
        assert torch.equal(new[name], old[name]), name
    torch.testing.assert_close(new["h"], old["h"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new["logits"], old["logits"], rtol=1e-5, atol=1e-5)

"""The tiny fixture GRU (TransformerLens style): fixed weights must give the stored reference outputs."""
import json
from pathlib import Path

import torch

from onion_gru.model import ModelConfig, RepeatGRU

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_gru"


def load():
    meta = json.loads((FIXTURE / "meta.json").read_text())
    model = RepeatGRU(ModelConfig(meta["hidden_size"], meta["variant"]))
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

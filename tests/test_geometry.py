import torch

from onion_gru.toy import LinearStore, OnionStore
from onion_gru.geometry import change_norms, change_vectors, cross_position_cosine
from onion_gru.internals import run_with_gates
from onion_gru.model import ModelConfig, RepeatRNN


def test_onion_store_changes_one_direction_with_layered_magnitudes():
    deltas = change_vectors(OnionStore(0.4), n=50)
    cos = cross_position_cosine(deltas)
    torch.testing.assert_close(cos, torch.ones(9, 9))
    norms = change_norms(deltas).mean(1)
    torch.testing.assert_close(norms[1:] / norms[:-1], torch.full((8,), 0.4))


def test_linear_store_changes_separate_directions():
    cos = cross_position_cosine(change_vectors(LinearStore(), n=50))
    torch.testing.assert_close(cos, torch.eye(9))


def test_gate_recording_matches_the_model():
    torch.manual_seed(0)
    model = RepeatRNN(ModelConfig(8))
    tokens = [10, 11, 1, 12]
    rec = run_with_gates(model, tokens)
    x = torch.tensor([[tokens]])
    h = model.encode(x, torch.tensor([[4]]))
    _, states = model.decode(h, x, return_states=True)
    torch.testing.assert_close(rec["h"][3], h[0, 0])
    torch.testing.assert_close(rec["h"][4:], states[0, 0])
    assert rec["z"].shape == (8, 8) and ((rec["z"] > 0) & (rec["z"] < 1)).all()

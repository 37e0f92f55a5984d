import torch

from onion_gru.toy import LinearStore, OnionStore
from onion_gru.geometry import change_norms, change_vectors, cross_position_cosine
import pytest

from onion_gru.internals import run_with_gates, write_schedule
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


def test_write_schedule_is_the_recorded_update_gate_averaged():
    """The GRU's schedule of one sequence is 1 - z of the hand-written recording, step by step; over
    several sequences, the mean of their schedules."""
    torch.manual_seed(0)
    model = RepeatRNN(ModelConfig(8))
    batch = torch.tensor([[10, 11, 1, 12], [3, 3, 29, 0]])
    alone = [(1 - run_with_gates(model, row.tolist())["z"]).mean(1) for row in batch]
    torch.testing.assert_close(write_schedule(model, batch[:1]), alone[0])
    torch.testing.assert_close(write_schedule(model, batch), (alone[0] + alone[1]) / 2)
    for cell in ("lstm", "gru_input_gates", "mingru", "minlstm"):
        schedule = write_schedule(RepeatRNN(ModelConfig(8, cell=cell)), batch)
        assert schedule.shape == (8,) and ((schedule > 0) & (schedule < 1)).all()
    with pytest.raises(ValueError, match="elman"):
        write_schedule(RepeatRNN(ModelConfig(8, cell="elman")), batch)

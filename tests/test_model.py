import pytest
import torch

from onion_gru.model import NO_INPUT, SOS, ModelConfig, RepeatGRU, exact_match, sequence_loss


@pytest.mark.parametrize("variant", ["autoregressive", "no_input"])
def test_encode_then_decode_is_one_gru_pass(variant):
    torch.manual_seed(0)
    model = RepeatGRU(ModelConfig(12, variant))
    x = torch.randint(0, 30, (5, 6))
    lengths = torch.tensor([6, 6, 6, 6, 6])
    logits = model.decode(model.encode(x, lengths), x)
    second = torch.full_like(x[:, :-1], NO_INPUT) if variant == "no_input" else x[:, :-1]
    full = torch.cat([x, torch.full((5, 1), SOS), second], 1)
    out, _ = model.rnn(model.embedding(full))
    torch.testing.assert_close(logits, model.fc(out[:, 6:]))


@pytest.mark.parametrize("variant", ["autoregressive", "no_input"])
def test_forward_is_the_same_function_with_and_without_padding(variant):
    """A sequence's logits do not depend on the other sequences of its batch or on their lengths."""
    torch.manual_seed(0)
    model = RepeatGRU(ModelConfig(12, variant))
    x = torch.randint(0, 30, (4, 5))
    same = model(x, torch.full((4,), 5))
    mixed = model(torch.cat([x, torch.randint(0, 30, (1, 5))]), torch.tensor([5, 5, 5, 5, 2]))
    torch.testing.assert_close(same, model.decode(model.encode(x, torch.full((4,), 5)), x))
    torch.testing.assert_close(same, mixed[:4])


def test_decode_with_lengths_skips_the_padding():
    """Given lengths, positions inside each length are unchanged and those past it are 0."""
    torch.manual_seed(0)
    model = RepeatGRU(ModelConfig(12))
    x, lengths = torch.randint(0, 30, (3, 6)), torch.tensor([6, 2, 4])
    h = model.encode(x, lengths)
    inside = (torch.arange(6)[None] < lengths[:, None])[..., None]
    torch.testing.assert_close(model.decode(h, x, lengths=lengths), model.decode(h, x) * inside)


def test_encode_uses_each_sequence_own_length():
    torch.manual_seed(0)
    model = RepeatGRU(ModelConfig(8))
    x = torch.randint(0, 30, (2, 7))
    h = model.encode(x, torch.tensor([3, 7]))
    torch.testing.assert_close(h[0], model.encode(x[:1, :3], torch.tensor([3]))[0])
    packed = torch.nn.utils.rnn.pack_padded_sequence(model.embedding(x), torch.tensor([3, 7]), batch_first=True,
                                                     enforce_sorted=False)
    _, h_packed = model.rnn(packed)
    torch.testing.assert_close(h, h_packed[0])


def test_parameter_counts_match_the_authors():
    for H, expected in [(48, 17_070), (64, 28_894), (1024, 6_360_094)]:
        n = sum(p.numel() for p in RepeatGRU(ModelConfig(H)).parameters())
        assert n == expected
        assert sum(p.numel() for p in RepeatGRU(ModelConfig(H, "no_input")).parameters()) == expected + H


def test_generate_equals_teacher_forcing_when_predictions_are_right():
    torch.manual_seed(0)
    model = RepeatGRU(ModelConfig(8))
    h = torch.randn(4, 8)
    free = model.generate(h, 5)
    forced = model.decode(h, free).argmax(-1)  # feeding its own predictions back gives the same
    assert torch.equal(free, forced)


def test_exact_match_and_loss_ignore_padding():
    pred = torch.tensor([[1, 2, 9], [1, 2, 3]])
    target = torch.tensor([[1, 2, 0], [1, 2, 0]])
    assert exact_match(pred, target, torch.tensor([2, 3])).tolist() == [True, False]
    logits = torch.zeros(1, 3, 30)
    logits[0, 2] = 100.0  # garbage past the length must not count
    loss = sequence_loss(logits, torch.tensor([[0, 0, 0]]), torch.tensor([2]))
    torch.testing.assert_close(loss, torch.log(torch.tensor(30.0)))
    summed = sequence_loss(logits, torch.tensor([[0, 0, 0]]), torch.tensor([2]), tokens_per_batch=4.0)
    torch.testing.assert_close(summed, 2 * torch.log(torch.tensor(30.0)) / 4)
    logits[0, 2, 2] = 200.0  # no padding (the fast path): a sure right answer at the third position
    full = sequence_loss(logits, torch.tensor([[0, 0, 2]]), torch.tensor([3]))
    torch.testing.assert_close(full, 2 * torch.log(torch.tensor(30.0)) / 3)


def test_bad_config_names_choices():
    with pytest.raises(ValueError, match="choose from"):
        ModelConfig(8, "bidirectional")

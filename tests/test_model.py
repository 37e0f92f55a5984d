import pytest
import torch

from onion_gru.model import NO_INPUT, SOS, ModelConfig, RepeatRNN, exact_match, sequence_loss


@pytest.mark.parametrize("variant", ["autoregressive", "no_input"])
def test_encode_then_decode_is_one_gru_pass(variant):
    torch.manual_seed(0)
    model = RepeatRNN(ModelConfig(12, variant))
    x = torch.randint(0, 30, (1, 5, 6))
    lengths = torch.full((1, 5), 6)
    logits = model.decode(model.encode(x, lengths), x)
    second = torch.full_like(x[..., :-1], NO_INPUT) if variant == "no_input" else x[..., :-1]
    full = torch.cat([x, torch.full((1, 5, 1), SOS), second], 2)
    out = model.rnn.sequence(model.embedding(full))
    torch.testing.assert_close(logits, model.fc(out[:, :, 6:]))


@pytest.mark.parametrize("variant", ["autoregressive", "no_input"])
def test_forward_is_the_same_function_with_and_without_padding(variant):
    """A sequence's logits do not depend on the other sequences of its batch or on their lengths."""
    torch.manual_seed(0)
    model = RepeatRNN(ModelConfig(12, variant))
    x = torch.randint(0, 30, (1, 4, 5))
    same = model(x, torch.full((1, 4), 5))
    mixed = model(torch.cat([x, torch.randint(0, 30, (1, 1, 5))], 1), torch.tensor([[5, 5, 5, 5, 2]]))
    torch.testing.assert_close(same, model.decode(model.encode(x, torch.full((1, 4), 5)), x))
    torch.testing.assert_close(same, mixed[:, :4])


def test_decode_with_lengths_skips_the_padding():
    """Given lengths, positions inside each length are unchanged and those past it are 0."""
    torch.manual_seed(0)
    model = RepeatRNN(ModelConfig(12))
    x, lengths = torch.randint(0, 30, (1, 3, 6)), torch.tensor([[6, 2, 4]])
    h = model.encode(x, lengths)
    inside = (torch.arange(6) < lengths[..., None])[..., None]
    torch.testing.assert_close(model.decode(h, x, lengths=lengths), model.decode(h, x) * inside)


def test_encode_uses_each_sequence_own_length():
    torch.manual_seed(0)
    model = RepeatRNN(ModelConfig(8))
    x = torch.randint(0, 30, (1, 2, 7))
    h = model.encode(x, torch.tensor([[3, 7]]))
    torch.testing.assert_close(h[:, 0], model.encode(x[:, :1, :3], torch.tensor([[3]]))[:, 0])
    rnn = torch.nn.GRU(8, 8, batch_first=True)
    rnn.load_state_dict({name: p[0] for name, p in model.rnn.named_parameters()})
    packed = torch.nn.utils.rnn.pack_padded_sequence(model.embedding(x)[0], torch.tensor([3, 7]), batch_first=True,
                                                     enforce_sorted=False)
    _, h_packed = rnn(packed)
    torch.testing.assert_close(h, h_packed)


def test_parameter_counts_match_the_authors():
    """A member's stored state holds the single model's parameters: the authors' counts."""
    for H, expected in [(48, 17_070), (64, 28_894), (1024, 6_360_094)]:
        group = RepeatRNN([ModelConfig(H), ModelConfig(H, "no_input")])
        assert sum(v.numel() for v in group.member_state(0).values()) == expected
        assert sum(v.numel() for v in group.member_state(1).values()) == expected + H


def test_members_initialise_as_torch_nn_does():
    """K = 1 draws PyTorch's default initialisation in nn's order: nn.Embedding, nn.GRU, nn.Linear."""
    torch.manual_seed(3)
    model = RepeatRNN(ModelConfig(8, "no_input"))
    torch.manual_seed(3)
    emb, rnn, fc = torch.nn.Embedding(32, 8), torch.nn.GRU(8, 8), torch.nn.Linear(8, 30)
    expected = {"embedding.weight": emb.weight, **{f"rnn.{k}": v for k, v in rnn.state_dict().items()},
                **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    state = model.member_state(0)
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)


def test_a_group_runs_each_member_as_it_would_alone():
    """Mixed variants and lengths: every member's logits equal its own group of one."""
    torch.manual_seed(0)
    configs = [ModelConfig(8), ModelConfig(8, "no_input"), ModelConfig(8)]
    group = RepeatRNN(configs).double()
    x, lengths = torch.randint(0, 30, (3, 4, 6)), torch.randint(2, 7, (3, 4))
    logits = group(x, lengths)
    for k, config in enumerate(configs):
        alone = RepeatRNN(config).double().load_members([group.member_state(k)])
        torch.testing.assert_close(logits[k:k + 1], alone(x[k:k + 1], lengths[k:k + 1]), rtol=0, atol=1e-12)
        torch.testing.assert_close(group.generate(group.encode(x, lengths), 6)[k:k + 1],
                                   alone.generate(alone.encode(x[k:k + 1], lengths[k:k + 1]), 6))


def test_generate_equals_teacher_forcing_when_predictions_are_right():
    torch.manual_seed(0)
    model = RepeatRNN([ModelConfig(8), ModelConfig(8, "no_input")])
    h = torch.randn(2, 4, 8)
    free = model.generate(h, 5)
    forced = model.decode(h, free).argmax(-1)  # feeding its own predictions back gives the same
    assert torch.equal(free, forced)


def test_exact_match_and_loss_ignore_padding():
    pred = torch.tensor([[1, 2, 9], [1, 2, 3]])
    target = torch.tensor([[1, 2, 0], [1, 2, 0]])
    assert exact_match(pred, target, torch.tensor([2, 3])).tolist() == [True, False]
    log30 = torch.log(torch.tensor(30.0))
    logits = torch.zeros(2, 1, 3, 30)  # two members, one sequence each
    logits[:, 0, 2] = 100.0  # garbage past the length must not count
    logits[1, 0, 2, 2] = 200.0  # member 1: a sure right answer at the third position
    targets, lengths = torch.tensor([[[0, 0, 0]], [[0, 0, 2]]]), torch.tensor([[2], [3]])
    torch.testing.assert_close(sequence_loss(logits, targets, lengths), torch.stack([log30, 2 * log30 / 3]))
    summed = sequence_loss(logits, targets, lengths, tokens_per_batch=4.0)
    torch.testing.assert_close(summed, torch.stack([2 * log30 / 4, 2 * log30 / 4]))


def test_bad_config_names_choices():
    with pytest.raises(ValueError, match="choose from"):
        ModelConfig(8, "bidirectional")

import numpy as np
import pytest
import torch

from onion_gru import data


def test_valid_set_matches_the_authors_spec():
    tokens, lengths = data.load("valid")
    assert tokens.shape == (5000, 9) and tokens.dtype == torch.uint8
    counts = torch.bincount(lengths.long(), minlength=10)
    assert counts[:2].sum() == 0 and counts[2] == 180  # length 2 capped at int(0.2 * 900)
    assert int(tokens.max()) < 30
    pad = torch.arange(9)[None] >= lengths[:, None].long()
    assert (tokens[pad] == 0).all()


def test_train_excludes_valid_and_is_unique():
    tokens, lengths = data.load("train", size=200_000)
    keys = data.sequence_keys(tokens.numpy(), lengths.numpy())
    assert len(np.unique(keys)) == len(keys)
    v_keys = data.sequence_keys(*(t.numpy() for t in data.load("valid")))
    assert not np.isin(keys, v_keys).any()
    assert set(lengths.unique().tolist()) == set(range(2, 10))


def test_full_train_set_exhausts_short_lengths():
    _, lengths = data.load("train")
    counts = torch.bincount(lengths.long(), minlength=10)
    assert len(lengths) == 1_000_000
    assert counts[2] == 900 - 180  # every length-2 sequence not in valid
    assert 140_000 < counts[5] < 190_000


def test_same_seed_same_data_and_different_seed_differs():
    spec = data.SPECS["valid"]
    a, b = data.generate(spec), data.generate(spec)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = data.generate(data.DatasetSpec(2, 9, 5000, 124, max_fraction=0.2))
    assert not np.array_equal(a[0], c[0])


def test_special_sets():
    t, l = data.load("intervention")
    assert (l == 9).all() and len(t) == 5000
    t, l = data.load("valid_longer_2")
    assert t.shape == (1000, 11) and (l == 11).all()
    t, l = data.load("valid_longer_1_norepeat")
    assert all(len(set(row.tolist())) == 10 for row in t)
    t, l = data.load("valid_rep_3")
    for row, n in zip(t[:200], l[:200]):
        _, counts = np.unique(row[:n].numpy(), return_counts=True)
        assert sorted(counts.tolist()) == [1] * (int(n) - 3) + [3]


def test_keys_are_unique_per_sequence():
    tokens = np.array([[1, 0, 0], [1, 0, 0], [1, 2, 0]])
    keys = data.sequence_keys(tokens, np.array([1, 2, 2]))
    assert len(set(keys.tolist())) == 3


def test_unknown_set_names_choices():
    with pytest.raises(ValueError, match="choose from"):
        data.load("nope")


def test_string_round_trip():
    assert data.decode_string(data.encode_string("a b 1 c")) == "a b 1 c"

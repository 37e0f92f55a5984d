"""The repeat (copy) task: random token sequences that the GRU reads and then writes out again.

Every dataset is a pair of uint8 tensors, ``tokens [n, max_len]`` (padded with 0, which is also a
real symbol: padding is always masked by ``lengths``) and ``lengths [n]``.  Sets are generated
deterministically from a numpy seed in a single process, so the same spec gives the same data on
any machine (the authors' multiprocessing sampler did not).  Sequences are unique within a set and a
training set excludes the evaluation set it is paired with, as in the authors' code.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

N_SYMBOLS = 30
SYMBOLS = ("0123456789abcdefghijklmnopqrstuvwxyz")[:N_SYMBOLS]  # id i is SYMBOLS[i]


@dataclass(frozen=True)
class DatasetSpec:
    """One named set. ``kind`` is 'random' (i.i.d. tokens), 'distinct' (no repeated token), or
    'repeat3' (distinct tokens except one symbol that occurs exactly three times)."""
    min_len: int
    max_len: int
    size: int
    seed: int
    kind: str = "random"
    max_fraction: float | None = None  # cap each length at int(f * #possible sequences)
    exclude: str | None = None  # name of the set this one must not overlap


# The authors' sets (authors_implementation.md section 1.3).  Sizes of the two 1M training sets may be
# shrunk by a profile through `load(name, size=...)`; everything else is fixed.
SPECS: dict[str, DatasetSpec] = {
    "valid": DatasetSpec(2, 9, 5_000, 123, max_fraction=0.2),
    "train": DatasetSpec(2, 9, 1_000_000, 0, exclude="valid"),
    "valid_longer_1": DatasetSpec(10, 10, 1_000, 674),
    "valid_longer_2": DatasetSpec(11, 11, 1_000, 345),
    "valid_longer_1_norepeat": DatasetSpec(10, 10, 1_000, 345, kind="distinct"),
    # linear interventions: length 9 only
    "intervention": DatasetSpec(9, 9, 5_000, 1234),
    "intervention_train": DatasetSpec(9, 9, 1_000_000, 0, exclude="intervention"),
    "intervention_norepeat": DatasetSpec(9, 9, 5_000, 3452, kind="distinct"),
    # extra onion-intervention sets (note: the authors' 'valid_norep_3' samples *with* repeats)
    "valid_rep_3": DatasetSpec(3, 9, 1_000, 126, kind="repeat3"),
    "valid_norep_3": DatasetSpec(3, 9, 1_000, 126),
}


def n_possible(length: int, kind: str = "random") -> int:
    if kind == "random":
        return N_SYMBOLS ** length
    if kind == "distinct":
        return math.perm(N_SYMBOLS, length)
    # repeat3: choose the tripled symbol, its 3 slots, and distinct symbols for the other slots
    return N_SYMBOLS * math.comb(length, 3) * math.perm(N_SYMBOLS - 1, length - 3)


def sequence_keys(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A unique int64 per sequence: the base-30 number of its tokens plus an offset per length."""
    n, width = tokens.shape
    powers = N_SYMBOLS ** np.arange(width, dtype=np.int64)
    mask = np.arange(width)[None, :] < lengths[:, None]
    body = (tokens.astype(np.int64) * powers * mask).sum(1)
    return body + _key_offsets(width)[lengths]


def _draw(rng: np.random.Generator, n: int, lengths_allowed: np.ndarray, width: int, kind: str):
    lengths = rng.choice(lengths_allowed, size=n)
    if kind == "random":
        tokens = rng.integers(0, N_SYMBOLS, size=(n, width))
    else:  # rows of a random permutation are distinct tokens
        tokens = np.argsort(rng.random((n, N_SYMBOLS)), axis=1)[:, :width]
        if kind == "repeat3":
            # copy the token at one slot onto two other slots, all three within the length
            for i in range(n):
                slots = rng.choice(lengths[i], size=3, replace=False)
                tokens[i, slots[1:]] = tokens[i, slots[0]]
    mask = np.arange(width)[None, :] < lengths[:, None]
    return np.where(mask, tokens, 0).astype(np.uint8), lengths.astype(np.uint8)


def generate(spec: DatasetSpec, exclude_keys: np.ndarray | None = None, size: int | None = None):
    """Rejection-sample ``size`` unique sequences; returns numpy (tokens, lengths)."""
    size = spec.size if size is None else size
    rng = np.random.default_rng(spec.seed)
    width = spec.max_len
    all_lengths = np.arange(spec.min_len, spec.max_len + 1)
    exclude_keys = np.zeros(0, np.int64) if exclude_keys is None else exclude_keys
    cap = {}
    for l in all_lengths:
        c = n_possible(int(l), spec.kind)
        if spec.max_fraction is not None:
            c = int(spec.max_fraction * c)
        excluded = np.sum(_key_length(exclude_keys, width) == l)
        cap[int(l)] = min(c, n_possible(int(l), spec.kind) - int(excluded))
    tokens = np.zeros((0, width), np.uint8)
    lengths = np.zeros(0, np.uint8)
    while len(tokens) < size:
        counts = np.bincount(lengths, minlength=width + 1)
        open_lengths = np.array([l for l in all_lengths if counts[l] < cap[int(l)]])
        if len(open_lengths) == 0:
            raise ValueError(f"only {len(tokens)} unique sequences exist for {spec}")
        t, l = _draw(rng, int((size - len(tokens)) * 1.2) + 64, open_lengths, width, spec.kind)
        tokens, lengths = np.concatenate([tokens, t]), np.concatenate([lengths, l])
        keys = sequence_keys(tokens, lengths)
        _, first = np.unique(keys, return_index=True)
        keep = np.zeros(len(keys), bool)
        keep[first] = True
        keep &= ~np.isin(keys, exclude_keys)
        for length in all_lengths:  # per-length cap, keeping the earliest draws
            idx = np.flatnonzero(keep & (lengths == length))
            keep[idx[cap[int(length)]:]] = False
        tokens, lengths = tokens[keep][:size], lengths[keep][:size]
    return tokens, lengths


def _key_offsets(width: int) -> np.ndarray:
    """Keys of length-l sequences lie in [offsets[l], offsets[l + 1])."""
    return np.cumsum([0] + [N_SYMBOLS ** l for l in range(width + 1)], dtype=np.int64)


def _key_length(keys: np.ndarray, width: int) -> np.ndarray:
    return np.searchsorted(_key_offsets(width), keys, side="right") - 1


@functools.lru_cache(maxsize=16)
def load(name: str, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The named set as (tokens uint8 [n, max_len], lengths uint8 [n]); cached per process."""
    if name not in SPECS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(SPECS)}")
    spec = SPECS[name]
    exclude = None
    if spec.exclude is not None:
        t, l = load(spec.exclude)
        exclude = sequence_keys(t.numpy(), l.numpy())
    tokens, lengths = generate(spec, exclude, size)
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


def decode_string(tokens, length=None) -> str:
    length = len(tokens) if length is None else int(length)
    return " ".join(SYMBOLS[int(t)] for t in tokens[:length])


def encode_string(text: str) -> list[int]:
    """'a b 1 c' -> token ids."""
    return [SYMBOLS.index(c) for c in text.split()]

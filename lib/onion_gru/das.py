"""pyvene's distributed alignment search (DAS) on the cached GRUs, one position at a time: its
configs and cache entries, readable without pyvene; the training (``pyvene_glue.train_das``,
``get_das``, ``run_das``) needs the optional extra.

What we chose where the comparison could be run many ways: pyvene's ``LowRankRotatedSpaceIntervention``
of rank N / 8 on the final state, trained as pyvene's tutorials train it (Adam, lr 1e-3, batch
256, cross-entropy of the counterfactual sequence) for a fixed 1,000 steps, one position at a time,
on seed 0 of each GRU, at positions 0, 4 and 8 (the first, the middle and the last: the notebook's
cost on two cores), scored on 1,000 fixed pairs of the "intervention" set.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .profiles import Profile
from .train import RNNConfig, rnn_hash

PYVENE_VERSION = "0.1.8"  # pyproject.toml's extra; part of every key, since the results are pyvene's
DAS_POSITIONS = (0, 4, 8)


@dataclass(frozen=True)
class DASConfig:
    """One DAS run: the GRU (its cache key), the position and the rank, and how it trains."""
    gru_hash: str
    position: int
    rank: int
    steps: int = 1_000
    batch_size: int = 256
    lr: float = 1e-3
    eval_size: int = 1_000  # evaluation pairs: sequences i and eval_size + i of the "intervention" set
    seed: int = 0
    pyvene: str = PYVENE_VERSION

    @classmethod
    def of(cls, gru: RNNConfig, position: int) -> "DASConfig":
        return cls(rnn_hash(gru), position, rank=max(1, gru.model_config.state_size // 8))


def das_entry(gru: RNNConfig, config: DASConfig) -> tuple[str, dict]:
    return f"{gru.label}-das-p{config.position}", asdict(config)


def das_cells(profile: Profile) -> list[RNNConfig]:
    """The GRUs a profile's DAS runs use: each size and variant, its first seed."""
    return [RNNConfig.from_profile(profile, n, v, s) for n, v, s in profile.grus() if s == profile.seeds[0]]

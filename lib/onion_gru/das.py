"""pyvene's distributed alignment search (DAS) on the cached GRUs, one position at a time: its
configs and cache entries (``das``), readable without pyvene; the training itself is
``pyvene_glue.train_das`` (the optional extra).

What we chose where the comparison could be run many ways: pyvene's ``LowRankRotatedSpaceIntervention``
of rank N / 8 on the final state, trained as pyvene's tutorials train it (Adam, lr 1e-3, batch
256, cross-entropy of the counterfactual sequence) for a fixed 1,000 steps, one position at a time,
on seed 0 of each GRU, at positions 0, 4 and 8 (the first, the middle and the last: the notebook's
cost on two cores), scored on 1,000 fixed pairs of the "intervention" set.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from . import cache
from .profiles import Profile
from .train import RNNConfig, get_gru, gru_entry, gru_hash

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
        return cls(gru_hash(gru), position, rank=max(1, gru.model_config.state_size // 8))


def das_entry(gru: RNNConfig, config: DASConfig) -> tuple[str, dict]:
    return f"{gru.label}-das-p{config.position}", asdict(config)


def das_cells(profile: Profile) -> list[RNNConfig]:
    """The GRUs a profile's DAS runs use: each size and variant, its first seed."""
    return [RNNConfig.from_profile(profile, n, v, s) for n, v, s in profile.grus() if s == profile.seeds[0]]


def get_das(gru: RNNConfig, config: DASConfig, compute: bool = True) -> dict:
    """The manifest of one DAS run: from the cache, or trained now on the cached GRU (pyvene needed;
    never trains the GRU); ``compute`` False: a missing one raises ``cache.Missing``."""

    def train(missing, checkpoint):
        from .pyvene_glue import train_das
        model, _ = get_gru(gru, device="cpu", train=False)
        state, metrics = train_das(model, config)
        return [state], [metrics]
    (found,) = cache.get_or_train("das", [das_entry(gru, config)], train if compute else None)
    return found[1]


def run_das(profiles: list[Profile], positions=DAS_POSITIONS) -> list[str]:
    """Every DAS run of ``profiles`` (``das_cells`` x ``positions``) whose GRU is cached and result is
    not, smallest GRU first; one line per run."""
    lines, todo, keys = [], [], set()
    for profile in profiles:
        for gru in das_cells(profile):
            for p in positions:
                label, config = das_entry(gru, DASConfig.of(gru, p))
                key = f"{label}-{cache.config_hash(config)}"
                if (cache.state("gru", *gru_entry(gru)) == cache.DONE and not cache.is_done("das", label, config)
                        and key not in keys):
                    todo.append((gru, p))
                    keys.add(key)
    for gru, p in sorted(todo, key=lambda t: t[0].model_config.state_size):
        m = get_das(gru, DASConfig.of(gru, p))["metrics"]
        lines.append(f"{gru.label} position {p}: pyvene DAS {m['accuracy']:.3f} (floor {m['floor']:.3f}, "
                     f"{m['seconds_per_step']:.3f} s a step)")
        print(lines[-1], flush=True)
    return lines

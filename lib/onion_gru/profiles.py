"""The three named run profiles, defined once, as data.

``paper`` is the authors' protocol (authors_implementation.md section 3).  ``laptop`` is what a
2-core CPU can do in about two hours; the README says why each of its numbers differs from
``paper``.  ``smoke`` runs the whole pipeline in minutes for CI and proves nothing scientific.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .model import VARIANTS

PAPER_SIZES = (48, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Profile:
    name: str
    sizes: tuple[int, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    gru_steps: int  # optimizer steps of each GRU
    analysis_steps: int  # optimizer steps of each intervention or probe
    eval_every: int  # GRU validation interval (the accuracy-vs-steps curve in the manifest)
    train_size: int = 1_000_000  # size of each training set (lengths 2-9, and length 9 only)
    eval_size: int = 5_000  # evaluation sets are truncated to this many sequences
    batch_size: int = 256

    def grus(self) -> list[tuple[int, str, int]]:
        """Every (size, variant, seed) of the profile: one GRU each, in a fixed order."""
        return [(n, v, s) for n in self.sizes for v in self.variants for s in self.seeds]

    def check(self, sizes=None, variants=None, seeds=None) -> "Profile":
        """This profile restricted to a subset; unknown values raise with the valid choices."""
        for label, asked, valid in (("size", sizes, self.sizes), ("variant", variants, self.variants),
                                    ("seed", seeds, self.seeds)):
            bad = [a for a in (asked or ()) if a not in valid]
            if bad:
                raise ValueError(f"unknown {label} {bad} for profile {self.name!r}; choose from {list(valid)}")
        return replace(self, sizes=tuple(sizes or self.sizes), variants=tuple(variants or self.variants),
                       seeds=tuple(seeds or self.seeds))


PROFILES: dict[str, Profile] = {
    "paper": Profile("paper", PAPER_SIZES, VARIANTS, (0, 1, 2, 3, 4),
                     gru_steps=40_000, analysis_steps=60_000, eval_every=1_000),
    "laptop": Profile("laptop", (48, 64, 128), VARIANTS, (0, 1),
                      gru_steps=16_000, analysis_steps=4_000, eval_every=1_000),
    "smoke": Profile("smoke", (16, 32), VARIANTS, (0,),
                     gru_steps=60, analysis_steps=30, eval_every=30,
                     train_size=20_000, eval_size=300),
}
DEFAULT_PROFILE = "laptop"


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {sorted(PROFILES)}")
    return PROFILES[name]

# %% [markdown]
# # 10 · Beyond the paper: which positions turn linear first?
#
# **Not a paper artefact.**  The linear unigram intervention of notebook 02 is trained and scored
# on examples that swap a random half of the nine positions at once, so its accuracy is close to
# the product of every position's success: one position that is not stored linearly pulls a whole
# example down.  Here every shipped intervention is scored again with **one position corrupted at a
# time**, every method on the same 5,000 length-9 sequences (the first of the `intervention` set;
# the onion's own set has lengths 2-9, where position 8 exists only in length-9 sequences, so its
# own-set numbers would not compare) (`analysis.evaluate_positions`, from the cached models, no
# training; `train` and `python -m onion_gru evaluate` compute it):
#
# * linear unigram: position p alone swapped with a partner example, its variable's coordinates
#   taken from the partner's state;
# * linear bigram: position p corrupted, the pair variables touching p from a source that shares
#   tokens p-1, p, p+1 (as in training, at a fixed p; pairs are not scored one by one);
# * onion: position p replaced by a random token and repaired (the onion edits one position anyway).
#
# Each position has its own floor, the accuracy of the corrupted state left unpatched (about 1/30:
# the corrupting token equals the original).  The ceiling is the GRU's own accuracy on the same
# sequences (`gru_accuracy`; the top row of each panel): an intervention cannot do better than the
# GRU it edits, and a cell whose GRU gets fewer than half of them right (`claims.CEILING`, marked ‡)
# is left out of the claims.  n is the seeds of a cell (in the CSV, and under each N in the figure
# and tables where it varies).
#
# **Hypothesis.**  Linear storage appears position by position: in an autoregressive GRU the first
# position becomes linearly swappable at a smaller N than the middle one (an earlier probe of this
# with pyvene's DAS suggested it, issue #27).  **Switch size** of a position (notebook 08's
# definition, per position): the smallest N measured from which on (at it and every larger N) the
# linear unigram accuracy with that position alone swapped is at least 0.5, mean over seeds.

# %% tags=["parameters"]
profile = "laptop"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.analysis import INTERVENTION_METHODS
from onion_gru.profiles import extension, get_profile

P = notebook.active_profile(profile)
figures.set_style()
# the paper's sizes (notebooks 01, 02, 04) and the grid's between them; at each (N, variant, method)
# the first source that has results fills it (tables.first_found, as notebook 02's six-size table)
sources = list(dict.fromkeys([*P.size_sources, extension(P, "grid").name]))
print("sources, in order of preference:", ", ".join(sources))

# %%
runs = tables.first_found({s.name: results.position_results(s, [m for m in INTERVENTION_METHODS if m in (s.methods or INTERVENTION_METHODS)],
                                                            partial=True) for s in map(get_profile, sources)},
                          ("size", "variant", "method"))
print(f"{len(runs)} (GRU, intervention, position) results; sizes: {sorted(set(runs['size'])) if len(runs) else []}")

# %%
keys = ["size", "variant", "method", "position"]
if len(runs):
    table = tables.aggregate(runs, by=keys, also={"floor": "mean", "examples": "min", "flattened": "all",
                                                  "gru_accuracy": "mean"}, sort=True)
    table.insert(table.columns.get_loc("flattened"), "capped", ~table.pop("flattened").astype(bool))
    table["below_ceiling"] = table["gru_accuracy"] < claims.CEILING
    wide = table[table.method == "linear_unigram"].assign(
        text=lambda t: [f"{m:.2f}" + (f" {tables.CAPPED}" if c else "") + (" ‡" if b else "")
                        for m, c, b in zip(t["mean"], t["capped"], t["below_ceiling"])])
    md = ""
    for variant, part in wide.groupby("variant", sort=False):
        grid = part.pivot_table(index="position", columns="size", values="text", aggfunc="first")
        tops = part.groupby("size")[["gru_accuracy", "n"]].first()
        grid.loc["GRU itself"] = [f"{tops.loc[n, 'gru_accuracy']:.2f}" for n in grid.columns]
        varies = part["n"].nunique() > 1
        grid.columns = [f"N={n}" + (f" (n = {tops.loc[n, 'n']})" if varies else "") for n in grid.columns]
        md += f"\n### {tables.VARIANT_LABELS[variant]}: linear unigram, one position swapped (length 9)\n\n"
        md += tables.to_markdown(grid.reset_index())
    md += (f"\nCells: mean over seeds (n = {'-'.join(map(str, sorted(set(table['n']))))}), each on "
           f"{int(table['examples'].min()):,} length-9 sequences; {tables.CAPPED}: a seed's intervention stopped at "
           f"its cap (a lower bound); ‡: the GRU itself gets fewer than {claims.CEILING} of them right (row *GRU "
           "itself*), left out of the claims.  All methods, floors and profiles: `10_positions.csv`.\n")
    tables.save_table(table, "10_positions", P, markdown=md)
    print(md)

# %% [markdown]
# ## Accuracy by position and size
# One panel per variant and intervention: colour is the accuracy with that position alone
# corrupted, mean over seeds (the floors are about 0.03); a column is one hidden size N, its seeds
# n under it; the top row, above the white line, is the GRU's own accuracy on the same sequences.

# %%
if len(runs):
    methods = [m for m in INTERVENTION_METHODS if m in set(table.method)]
    variants = [v for v in P.variants if v in set(table.variant)]
    fig, axes = plt.subplots(len(variants), len(methods), figsize=(3.2 * len(methods), 2.5 * len(variants)),
                             squeeze=False, layout="constrained")
    for row, variant in zip(axes, variants):
        for ax, method in zip(row, methods):
            part = table[(table.variant == variant) & (table.method == method)]
            grid = part.pivot_table(index="position", columns="size", values="mean")
            tops = part.groupby("size")[["gru_accuracy", "n"]].first().reindex(grid.columns)
            values = np.vstack([grid.to_numpy(), tops["gru_accuracy"].to_numpy()[None]])
            image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="lower")
            for (i, j), v in np.ndenumerate(values):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.2f}".lstrip("0"), ha="center", va="center", fontsize=4.5, color="w" if v < 0.6 else "k")
            ax.axhline(grid.shape[0] - 0.5, color="white", lw=1.5)
            ax.set_xticks(range(grid.shape[1]), [f"{n}\nn={k}" for n, k in zip(grid.columns, tops["n"])], fontsize=5)
            ax.set_yticks(range(values.shape[0]), [*map(str, grid.index), "GRU"], fontsize=6)
            ax.set(title=f"{tables.VARIANT_LABELS[variant]}: {tables.METHOD_LABELS[method]}", xlabel="hidden size N",
                   ylabel="position")
            ax.grid(False)
    fig.colorbar(image, ax=axes, shrink=0.6, label="accuracy, one position corrupted")
    figures.save_figure(fig, "10_positions", P)
    plt.show()

# %% [markdown]
# ## Check
# Per variant and position, the switch size (definition above) of the linear unigram intervention.
# The hypothesis holds for a variant when position 0 switches at a smaller N than position 4 (or
# position 0 switches and position 4 does not within the sizes measured); it fails when position 4
# switches first or together with position 0; it cannot be decided when neither switches (NOT TESTABLE).

# %%
def switch_size(variant: str, position: int, method: str = "linear_unigram") -> int | None:
    if not len(runs):
        return None
    part = table[(table.method == method) & (table.variant == variant) & (table.position == position) & ~table.below_ceiling]
    return claims.switch_size(part.set_index("size")["mean"])


positions = sorted(set(table.position)) if len(runs) else []
switches = pd.DataFrame([{"variant": v, "position": p, "linear unigram from N": switch_size(v, p),
                          "linear bigram from N": switch_size(v, p, "linear_bigram")}
                         for v in P.variants for p in positions])
print(switches.to_string(index=False) if len(switches) else "no results")

# Decided on intervals over seeds as notebook 08's claim (claims.switch_bounds, switches_first): per
# position, where its linear storage is sure (every larger N's interval at or above 0.5) and where it
# is no longer ruled out.


def seeds_by_size(variant: str, position: int) -> dict:  # the cells at or above the GRU's ceiling
    return claims.seeds_by_size(claims.testable(runs[(runs.method == "linear_unigram") & (runs.variant == variant)
                                                     & (runs.position == position)]))


def bounds_of(variant: str, position: int) -> tuple:
    return claims.switch_bounds(seeds_by_size(variant, position))


claims.scope("10_positions", "new")
for variant in P.variants:
    first, middle = switch_size(variant, 0), switch_size(variant, 4)
    b0, b4 = (bounds_of(variant, 0), bounds_of(variant, 4)) if len(runs) else ((None, None), (None, None))
    said = lambda n: f"from N = {n}" if n else "not within the sizes measured"
    claims.claim(P, "10_positions", "(none: beyond the paper)",
                 f"{tables.VARIANT_LABELS[variant].lower().replace(' ', '-')} GRUs store the first position linearly "
                 "before the middle one",
                 lambda: claims.switches_first(bounds_of(variant, 0), bounds_of(variant, 4)) if len(runs) else None,
                 f"one position swapped, linear unigram >= 0.5: position 0 {said(first)}, position 4 {said(middle)} "
                 f"(intervals: sure from {b0[0]} / {b4[0]}, possible from {b0[1]} / {b4[1]})",
                 {f"position {p} N={n}": claims.interval(x) for p in (0, 4)
                  for n, x in (seeds_by_size(variant, p).items() if len(runs) else [])})
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

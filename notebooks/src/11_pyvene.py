# %% [markdown]
# # 11 · Beyond the paper: does pyvene's own DAS find what our linear intervention finds?
#
# **Not a paper artefact.**  Interpretability researchers run interchange interventions with
# Stanford's [pyvene](https://github.com/stanfordnlp/pyvene).  An independent check of our linear
# unigram intervention: pyvene's distributed alignment search, trained by pyvene's own recipe, on
# the same shipped GRUs, one position at a time (`lib/onion_gru/das.py` says what we chose: a
# `LowRankRotatedSpaceIntervention` of rank N / 8 on the final state, Adam at lr 1e-3, batch 256,
# a fixed 1,000 steps, seed 0 of each GRU, positions 0, 4 and 8, 1,000 fixed evaluation pairs;
# `python -m onion_gru das`, the optional extra `make pyvene`).  Beside it: our linear unigram
# intervention on the same GRU with the same single position swapped (notebook 10's evaluation).
# The two differ in more than the library: DAS learns one position's subspace alone, with a fixed
# rank and a fixed budget; ours learns all nine positions' subspaces at once, their sizes learned,
# until its curve flattens.  Both are scored on the counterfactual (the base with the source's
# token at p) by teacher-forced exact match; the floors are about 0.03.
#
# **Claim.**  The two agree on which GRUs store a position linearly: a (size, variant, position)
# cell counts as linear for a method when its accuracy is at least 0.5 (notebook 08's threshold);
# SUPPORTED when the methods agree on at least 90% of the cells compared, NOT SUPPORTED otherwise
# (the disagreements are listed), NOT TESTABLE without pyvene results.

# %% tags=["parameters"]
profile = "laptop"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.profiles import PAPER_SIZES, get_profile

P = notebook.active_profile(profile)
figures.set_style()
sizes = PAPER_SIZES if P.science else sorted({n for s in P.size_sources for n in get_profile(s).sizes})
print("sources, in order of preference:", ", ".join(P.size_sources), "| sizes:", list(sizes))

# %%
das = tables.first_found({s: results.das_results(get_profile(s)) for s in P.size_sources}, ("size", "variant"))
das = das[das["size"].isin(sizes)] if len(das) else das
# ours from the same profile as each DAS run, on the same GRU
ours = {s: results.position_results(get_profile(s), ["linear_unigram"], partial=True) for s in dict.fromkeys(das.get("profile", []))}
rows = []
for r in das.itertuples():
    cell = dict(size=r.size, variant=r.variant, seed=r.seed, position=r.position, profile=r.profile)
    mine = ours[r.profile]
    mine = mine[(mine["size"] == r.size) & (mine.variant == r.variant) & (mine.seed == r.seed)
                & (mine.position == r.position)] if len(mine) else mine
    # the ceiling: the GRU's own accuracy on length-9 sequences (the first 5,000 of the set DAS draws its pairs from)
    cell["gru_accuracy"] = float(mine.gru_accuracy.iloc[0]) if len(mine) else float("nan")
    rows.append(cell | {"method": "pyvene DAS (rank N/8, 1,000 steps)", "accuracy": r.accuracy, "floor": r.floor})
    if len(mine):
        rows.append(cell | {"method": "ours: linear unigram, one position", "accuracy": float(mine.accuracy.iloc[0]),
                            "floor": float(mine.floor.iloc[0])})
table = pd.DataFrame(rows, columns=["size", "variant", "seed", "position", "profile", "method", "accuracy", "floor",
                                    "gru_accuracy"])
if len(table):
    wide = table.pivot_table(index=["variant", "position", "method"], columns="size", values="accuracy", sort=False)
    wide.columns = [f"N={n}" for n in wide.columns]
    md = tables.to_markdown(tables.filled(tables.labelled(wide.reset_index())))
    md += "\nCells: seed 0 of each GRU; the profile of each size in `11_pyvene.csv`.\n"
    tables.save_table(table, "11_pyvene", P, markdown=md)
    print(md)
else:
    print("no pyvene results in the cache: `make pyvene`, then `python -m onion_gru das --profile ...`")

# %%
if len(table):
    shown = table.assign(variant=table.variant.map(tables.VARIANT_LABELS), position=table.position.map("position {}".format))
    grid = sns.relplot(shown, x="size", y="accuracy", hue="method", style="method", col="position", row="variant",
                       kind="line", marker="o", height=2.2, aspect=1.2, linewidth=1)
    for (variant, position), ax in grid.axes_dict.items():  # the GRU itself on length 9, in grey
        part = shown[(shown.variant == variant) & (shown.position == position) & (shown.method == shown.method.iloc[0])]
        figures.draw_ceiling(ax, part.assign(eval_set="intervention"))
    figures.log_size_axes(grid, table["size"])
    figures.save_figure(grid.figure, "11_pyvene", P)
    plt.show()

# %% [markdown]
# ## Check

# %%
LINEAR = 0.5
cells = table.pivot_table(index=["size", "variant", "position"], columns="method", values="accuracy") if len(table) else pd.DataFrame()
compared = cells.dropna() if len(cells) and cells.shape[1] == 2 else pd.DataFrame()
if len(compared):
    linear = compared >= LINEAR
    agree = linear.iloc[:, 0] == linear.iloc[:, 1]
    print(f"{agree.sum()} of {len(agree)} cells agree")
    if (~agree).any():
        print("disagreements:\n" + compared[~agree].round(3).to_string())
    supported, evidence = (lambda: claims.exceeds(agree.mean(), 0.9)), (
        f"{agree.sum()} of {len(agree)} (size, variant, position) cells agree on accuracy >= {LINEAR}"
        + ("; they differ at " + ", ".join(f"N = {n} {v} p{p}" for n, v, p in compared[~agree].index) if (~agree).any() else ""))
else:
    supported, evidence = None, "no pyvene DAS results beside ours"
claims.scope("11_pyvene", "new")
claims.claim(P, "11_pyvene", "(none: a cross-check with pyvene)",
             "pyvene's DAS and our linear unigram intervention agree on which positions are stored linearly "
             "(at least 0.9 of the cells)",
             supported, evidence)

# %% [markdown]
# ## Agreement as a number
# Most cells sit near 0 or 1, where any two methods agree on a threshold.  The informative cells are
# the transition band, where either method lies in 0.1-0.9.  Per set of cells: the mean and the
# largest absolute difference between pyvene's DAS and ours.  The second claim, fixed before these
# numbers were computed: the methods agree in the band when the mean absolute difference there is at
# most 0.1 (the seed spread of our linear unigram cells near the switch is of that order: notebook 10).

# %%
BAND, AGREE_WITHIN = (0.1, 0.9), 0.1
if len(compared):
    pairs = compared.set_axis(["pyvene", "ours"] if compared.columns[0].startswith("pyvene") else ["ours", "pyvene"], axis=1)
    diff = (pairs["pyvene"] - pairs["ours"]).abs()
    in_band = pairs.apply(lambda r: any(BAND[0] <= v <= BAND[1] for v in r), axis=1)
    agreement = pd.DataFrame([{"cells": name, "n": int(mask.sum()),
                               "mean_abs_difference": diff[mask].mean() if mask.any() else float("nan"),
                               "max_abs_difference": diff[mask].max() if mask.any() else float("nan")}
                              for name, mask in (("all", in_band | ~in_band), (f"either in {BAND[0]}-{BAND[1]}", in_band))])
    tables.save_table(agreement, "11_pyvene_agreement", P)
    print(tables.to_markdown(agreement))
    fig, ax = plt.subplots(figsize=(3, 3))
    for variant, part in pairs.groupby(level="variant"):
        ax.scatter(part["ours"], part["pyvene"], s=12, label=tables.VARIANT_LABELS[variant])
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, zorder=0)
    ax.axvspan(*BAND, color="grey", alpha=0.08, zorder=0)
    ax.set(xlabel="ours: linear unigram, one position", ylabel="pyvene DAS", xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
    ax.legend(fontsize=7)
    figures.save_figure(fig, "11_pyvene_scatter", P)
    plt.show()
    band = agreement.iloc[1]
    close = None if band["n"] == 0 else (lambda: claims.exceeds(band["mean_abs_difference"], AGREE_WITHIN, above=False))
    band_evidence = (f"{int(band['n'])} of {len(pairs)} cells in the band: mean absolute difference "
                     f"{band['mean_abs_difference']:.3f}, largest {band['max_abs_difference']:.3f}; over all cells "
                     f"{agreement.iloc[0]['mean_abs_difference']:.3f} / {agreement.iloc[0]['max_abs_difference']:.3f}"
                     if band["n"] else "no cell in the band")
else:
    close, band_evidence = None, "no pyvene DAS results beside ours"
claims.claim(P, "11_pyvene", "(none: a cross-check with pyvene)",
             f"in the transition band the two differ by at most {AGREE_WITHIN} on average", close, band_evidence)
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

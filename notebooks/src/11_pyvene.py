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
    rows.append(cell | {"method": "pyvene DAS (rank N/8, 1,000 steps)", "accuracy": r.accuracy, "floor": r.floor})
    mine = ours[r.profile]
    mine = mine[(mine["size"] == r.size) & (mine.variant == r.variant) & (mine.seed == r.seed)
                & (mine.position == r.position)] if len(mine) else mine
    if len(mine):
        rows.append(cell | {"method": "ours: linear unigram, one position", "accuracy": float(mine.accuracy.iloc[0]),
                            "floor": float(mine.floor.iloc[0])})
table = pd.DataFrame(rows, columns=["size", "variant", "seed", "position", "profile", "method", "accuracy", "floor"])
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
    supported, evidence = bool(agree.mean() >= 0.9), (
        f"{agree.sum()} of {len(agree)} (size, variant, position) cells agree on accuracy >= {LINEAR}"
        + (f"; they differ at " + ", ".join(f"N = {n} {v} p{p}" for n, v, p in compared[~agree].index) if (~agree).any() else ""))
else:
    supported, evidence = None, "no pyvene DAS results beside ours"
claims.scope("11_pyvene", "new")
claims.claim(P, "11_pyvene", "(none: a cross-check with pyvene)",
             "pyvene's DAS and our linear unigram intervention agree on which positions are stored linearly",
             supported, evidence)
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

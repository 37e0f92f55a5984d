# %% [markdown]
# # 01 · How well does the GRU repeat a sequence?
#
# **Paper artefact:** the GRU task-accuracy table (rows *Autoregressive* / *No input*, one column per
# hidden size N; `paper/blackbox/performance.py`).  Every later analysis edits or reads the state of
# these GRUs, so they have to solve the task first.
#
# Metric: sequence-level exact match on the 5,000-sequence validation set (lengths 2-9) with teacher
# forcing, as the authors.  We add free-running greedy decoding, accuracy by length and the
# longer-sequence sets (length 10 and 11) the authors built but did not report.

# %% tags=["parameters"]
profile = "laptop"

# %%
import matplotlib.pyplot as plt
import seaborn as sns

from onion_gru import claims, figures, notebook, results, tables

P = notebook.active_profile(profile)
figures.set_style()
print(f"profile {P.name}: sizes {P.sizes}, seeds {P.seeds}, GRUs trained {P.gru.describe()}")

# %% [markdown]
# ## The table
# Mean ± sample std over seeds.  Trained models come from the cache in `data/` (or are trained now).

# %%
runs = results.rnn_results(P)
rows = []
for metric in ("accuracy", "greedy_accuracy", "valid_longer_1", "valid_longer_2"):
    agg = tables.aggregate(runs.assign(method=metric), P, value=metric)
    rows.append(agg)
import pandas as pd

table = pd.concat(rows, ignore_index=True)
md = tables.wide_markdown(table)
tables.save_table(table, "01_task_accuracy", P, markdown=md)
print(md)

# %% [markdown]
# ## Accuracy by length, and accuracy against training steps
# The right panel: accuracy on the curve subset until the convergence rule stopped each GRU
# (`profiles.Budget`; notebook 06 draws every curve, GRUs and analyses).

# %%
by_len = runs.melt(id_vars=["size", "variant", "seed"], value_vars=[c for c in runs if c.startswith("length_")],
                   var_name="length", value_name="acc")
by_len["length"] = by_len["length"].str.replace("length_", "").astype(int)
curves = results.rnn_curves(P)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), layout="constrained")
sns.lineplot(by_len, x="length", y="acc", hue="size", style="variant", marker="o", ax=axes[0], palette="viridis")
axes[0].set(xlabel="sequence length", ylabel="exact match", title="validation accuracy by length")
sns.lineplot(curves, x="step", y="accuracy", hue="size", style="variant", ax=axes[1], palette="viridis")
axes[1].set(xlabel="GRU training step", ylabel="exact match", title="curve subset during training")
for ax in axes:
    ax.legend(fontsize=6)
figures.save_figure(fig, "01_task_accuracy", P)
plt.show()

# %% [markdown]
# ## The paper's six sizes
# The same table over N = 48-1024 from every profile with results there (`Profile.size_sources`: the
# laptop profile, the `grid` at 256, the `large` profile at 512 and 1024, then what the `gpu_grid` and
# `gpu` profiles shipped), each column's profile named, every run stopped at its cap flagged (†, a
# lower bound); saved as `figures/01_task_accuracy_sizes.*`.  Read from the cache, never trained here.

# %%
sized_runs, _, md = tables.across_sizes(P, None, "01_task_accuracy")
print(md)

# %% [markdown]
# ## Claim check
# Paper: the analysed GRUs solve the task (the table's values are not available to us; the
# interventions presuppose near-perfect models).  We call the claim supported when at every size and
# variant the 95% t-interval of the mean exact match over seeds lies at or above 0.9, refuted when
# at some cell it lies below, undecided otherwise (claims.py).

# %%
# the six-size runs at the profile's sizes: each cell from the first source that has it (the five-seed
# campaign first), so the claim rests on every seed shipped
decided = sized_runs[sized_runs["size"].isin(P.sizes) & (sized_runs.method == "accuracy")]
cells = {(v, n): claims.seeds_of(decided, n, v, value="accuracy") for v in P.variants for n in P.sizes}
intervals = {f"{v} N={n}": claims.interval(x) for (v, n), x in cells.items()}
for name, iv in intervals.items():
    print(f"{name:28s} {iv.text()}")
means = {v: " / ".join(f"{intervals[f'{v} N={n}'].mean:.2f}" for n in P.sizes) for v in P.variants}
claims.scope("01_task_accuracy", "partial: N = 48-128; six sizes in a second table")
claims.claim(P, "01_task_accuracy", "GRU task accuracy table",
             "the GRUs learn the task (every cell >= 0.9)",
             lambda: claims.all_of(claims.decide(x, 0.9) for x in cells.values()),
             "; ".join(f"{tables.VARIANT_LABELS[v].lower()} {m}" for v, m in means.items())
             + f" at N = {' / '.join(map(str, P.sizes))}", intervals)
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

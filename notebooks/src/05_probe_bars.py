# %% [markdown]
# # 05 · Probes on the N = 64 autoregressive GRU
#
# **Paper artefact:** the probe bar chart `probe_godel.pdf` (`paper/blackbox/probe_small.py`): bars
# Linear, MLP, Onion, GRU - AR., GRU - No in. for the N = 64 autoregressive GRU; height = mean
# accuracy x 100, error bar = std x 100, 4 x 1.5 inches.  The numbers are the same runs as notebook 04.

# %% tags=["parameters"]
profile = "laptop"
size = 64

# %%
import matplotlib.pyplot as plt
import numpy as np

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.analysis import PROBE_METHODS

P = notebook.active_profile(profile)
figures.set_style()
size = size if size in P.sizes else max(P.sizes)
runs = results.analysis_results(P, PROBE_METHODS, sizes=[size], variants=["autoregressive"])
table = tables.aggregate(runs, P, also={"gru_accuracy": "mean"})
tables.save_table(table, "05_probe_bars", P)
print(table[["method", "mean", "std", "n"]].to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(4, 1.5))
labels = [tables.METHOD_LABELS[m] for m in table.method]
ax.bar(labels, table["mean"] * 100, yerr=table["std"].fillna(0) * 100, color="C0", capsize=2)
ax.axhline(runs.gru_accuracy.mean() * 100, color="grey", ls="--", lw=0.9, label="the GRU itself")  # the ceiling
ax.legend(fontsize=6, loc="upper left")
ax.set(xlabel="Probe", ylabel="Accuracy [%]", ylim=(0, 100))
ax.tick_params(axis="x", labelsize=8)
figures.save_figure(fig, "05_probe_bars", P)
plt.show()

# %% [markdown]
# ## Claim check
# The figure's point: on the N = 64 autoregressive GRU, the autoregressive probes (Onion, GRU - AR.)
# decode the sequence while the linear and MLP probes do not.  Supported when the 95% t-interval over
# seeds of the gap, per seed the lower of Onion and GRU - AR. less the higher of Linear and MLP, lies
# at or above 0.3; refuted when it lies below; undecided otherwise (claims.py).

# %%
m = dict(zip(table.method, table["mean"]))
seeds = {k: claims.seeds_of(runs, size, "autoregressive", k) for k in PROBE_METHODS}
gap = (np.minimum(seeds["probe_onion"], seeds["probe_gru_ar"]) - np.maximum(seeds["probe_linear"], seeds["probe_mlp"]))
print(f"N={size}: min(Onion, GRU-AR) - max(Linear, MLP) = {claims.interval(gap).text()}")
claims.scope("05_probe_bars", "full layout, partial protocol (the rule)")
claims.claim(P, "05_probe_bars", "probe bar chart (probe_godel.pdf)",
             f"only autoregressive probes decode the N = {size} GRU (gap >= 0.3)",
             lambda: claims.decide(gap, 0.3), ", ".join(f"{tables.METHOD_LABELS[k]} {v:.2f}" for k, v in m.items()),
             {"autoregressive - read-all-at-once gap": claims.interval(gap)})
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

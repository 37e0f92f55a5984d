# %% [markdown]
# # 06 · Have the numbers flattened? Accuracy curves of every GRU and every analysis
#
# **Not a paper artefact.**  A reported accuracy is only as good as its curve: an intervention that
# reads 0.5 might have failed, or might not have finished.  Every model in the cache records its
# curve (accuracy on a fixed subset of its evaluation set, at a fixed interval) and stops by one
# stated rule, `profiles.Budget`: when the best accuracy of the last window gains less than a
# threshold over the best before it, never before a minimum and never past a cap (at most the
# paper's 40k GRU and 60k analysis steps).  This notebook draws the curves and counts the runs that
# reached their cap instead of flattening: their numbers are lower bounds.

# %% tags=["parameters"]
profile = "laptop"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from onion_gru import report
from onion_gru.analysis import METHODS

P = report.active_profile(profile)
report.set_style()
print(f"profile {P.name}\nGRUs: {P.gru.describe()}\nanalyses: {P.analysis.describe()}")

# %%
gru_curves = report.gru_curves(P).assign(method="gru")
curves = pd.concat([gru_curves, report.analysis_curves(P, list(METHODS))], ignore_index=True)
runs = pd.concat([report.gru_results(P).assign(method="gru"), report.analysis_results(P, list(METHODS))],
                 ignore_index=True)[["size", "variant", "seed", "method", "steps", "flattened", "accuracy"]]
_ = report.save_table(runs.assign(profile=P.name), "06_curves", P)  # (no absolute paths in the output)

# %% [markdown]
# ## The curves
# One panel per method (the GRU itself first), accuracy on the curve subset against steps; colour is
# N, line style the decoder variant, one line per seed.  A curve ends where its run stopped.

# %%
order = ["gru", *METHODS]
curves["panel"] = curves.method.map(lambda m: "GRU (task)" if m == "gru" else report.METHOD_LABELS[m])
curves["run"] = curves.variant + curves.seed.astype(str)
grid = sns.relplot(curves, x="step", y="accuracy", hue="size", style="variant", units="run", estimator=None,
                   col="panel", col_wrap=3, kind="line", palette="viridis", height=1.9, aspect=1.3,
                   col_order=[("GRU (task)" if m == "gru" else report.METHOD_LABELS[m]) for m in order],
                   facet_kws={"sharex": False}, linewidth=0.9)
grid.set_titles("{col_name}")
grid.set(ylim=(-0.02, 1.02))
report.save_figure(grid.figure, "06_curves", P)
plt.show()

# %% [markdown]
# ## Steps run
# Mean over seeds of the steps each run took before the rule stopped it.

# %%
steps = runs.groupby(["method", "variant", "size"], sort=False)["steps"].mean().round().astype(int)
print(steps.unstack("size").to_string())

# %% [markdown]
# ## Check
# *Every reported number comes from a flattened curve.*  Supported when every run was stopped by the
# rule rather than by its cap; the runs that reached the cap are listed (their accuracy was still
# rising by at least the rule's threshold per window, so it is a lower bound).  A profile with fixed
# step counts (the paper's) cannot be judged this way.

# %%
ruled = P.gru.patience > 0 and P.analysis.patience > 0
capped = runs[~runs.flattened.astype(bool)]
print(f"{len(runs)} runs, {len(capped)} stopped at their cap")
if len(capped):
    print(capped.to_string(index=False))
report.scope("06_curves", "new")
report.claim(P, "06_curves", "(none: ours)", "every reported number comes from a flattened curve",
             len(capped) == 0 if ruled else None,
             f"{len(runs) - len(capped)} of {len(runs)} runs flattened"
             + (f"; at the cap: {', '.join(f'N = {r.size} {r.variant} s{r.seed} {r.method}' for r in capped.itertuples())}"
                if len(capped) else ""))
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

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

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.analysis import METHODS
from onion_gru.jobs import profile_jobs
from onion_gru.profiles import get_profile, with_snapshots

P = notebook.active_profile(profile)
figures.set_style()
print(f"profile {P.name}\nGRUs: {P.gru.describe()}\nanalyses: {P.analysis.describe()}")

# %%
rnn_curves = results.rnn_curves(P).assign(method="gru")
curves = pd.concat([rnn_curves, results.analysis_curves(P, list(METHODS))], ignore_index=True)
runs = pd.concat([results.rnn_results(P).assign(method="gru"), results.analysis_results(P, list(METHODS))],
                 ignore_index=True)[["size", "variant", "seed", "method", "steps", "flattened", "accuracy"]]
_ = tables.save_table(runs.assign(profile=P.name), "06_curves", P)  # (no absolute paths in the output)

# %% [markdown]
# ## The curves
# One panel per method (the GRU itself first), accuracy on the curve subset against steps; colour is
# N, line style the decoder variant, one line per seed.  A curve ends where its run stopped.

# %%
order = ["gru", *METHODS]
curves["panel"] = curves.method.map(lambda m: "GRU (task)" if m == "gru" else tables.METHOD_LABELS[m])
curves["run"] = curves.variant + curves.seed.astype(str)
grid = sns.relplot(curves, x="step", y="accuracy", hue="size", style="variant", units="run", estimator=None,
                   col="panel", col_wrap=3, kind="line", palette="viridis", height=1.9, aspect=1.3,
                   col_order=[("GRU (task)" if m == "gru" else tables.METHOD_LABELS[m]) for m in order],
                   facet_kws={"sharex": False}, linewidth=0.9)
grid.set_titles("{col_name}")
grid.set(ylim=(-0.02, 1.02))
figures.save_figure(grid.figure, "06_curves", P)
plt.show()

# %% [markdown]
# ## Steps run
# Mean over seeds of the steps each run took before the rule stopped it.

# %%
steps = runs.groupby(["method", "variant", "size"], sort=False)["steps"].mean().round().astype(int)
print(steps.unstack("size").to_string())

# %% [markdown]
# ## What it cost
# The compute behind the six-size tables of notebooks 01, 02 and 04, measured from the manifests of
# every model of the profiles they read (`size_sources`; the grid's sizes between the paper's
# included): core-hours
# per model = its run's wall time x torch threads / models trained together in its group (a resumed
# run's parts summed); seconds per step are the group's.  Entries a profile reused from another run
# (`copied_from`) count once, under the run that trained them.  Every method a profile has in the
# cache counts, not only its own list (the grid's probes at N = 256 were run beyond it).

# %%
size_tables = [results.run_costs(get_profile(name), METHODS) for name in P.size_sources]
costs = pd.concat(results.counted_once(size_tables), ignore_index=True)
costs["seconds_per_step"] = costs.seconds / costs.steps
cost_table = (costs.groupby(["size", "method", "profile", "device"], sort=True)
              .agg(models=("core_hours", "size"), steps=("steps", "mean"), seconds_per_step=("seconds_per_step", "mean"),
                   core_hours_per_model=("core_hours", "mean"), core_hours=("core_hours", "sum"))
              .reset_index().round({"steps": 0, "seconds_per_step": 3, "core_hours_per_model": 2, "core_hours": 2}))
cost_table["steps"] = cost_table["steps"].astype(int)
_ = tables.save_table(cost_table, "06_costs", P)
print(cost_table.to_string(index=False))
print(f"total: {cost_table.core_hours.sum():.1f} core-hours over {cost_table.models.sum()} models")

# per size, for the README: core-hours per model of the GRU, the interventions and the probes, and the total
kinds = costs.assign(kind=costs.method.map(lambda m: "gru" if m == "gru" else "probe" if m.startswith("probe") else "intervention"))
by_size = kinds.pivot_table(index="size", columns="kind", values="core_hours", aggfunc="mean")
by_size.columns = [f"{k} core-h per model" for k in by_size.columns]
by_size["models"] = kinds.groupby("size").size()
by_size["core-hours"] = kinds.groupby("size")["core_hours"].sum()
by_size["profiles"] = kinds.groupby("size")["profile"].agg(lambda p: " + ".join(dict.fromkeys(p)))
by_size = by_size.reset_index().round(2)
_ = tables.save_table(by_size, "06_costs_by_size", P, markdown=tables.to_markdown(by_size.astype(object).fillna("not run")))
print(by_size.to_string(index=False))

# %% [markdown]
# ## What the extensions cost
# The same measure for every profile beyond the paper's tables (`extensions`: other cells, the
# checks, the training dynamics with their snapshots), in the order listed.  A model counts once, under
# the first table that holds it: the grid's sizes 48-128 are the laptop's GRUs, already counted above,
# and a check that reuses the grid's GRUs counts only its own analyses.  `shipped` is models and
# analyses in the cache against the profile's jobs; a run still going costs what it has run so far
# only once its entry is written.

# %%
extension_names = list(dict.fromkeys(name for _, name in P.extensions))
extension_parts = {name: with_snapshots(get_profile(name)) for name in extension_names}  # a profile and its snapshots
extension_tables = [pd.concat([results.run_costs(p) for p in extension_parts[name]], ignore_index=True)
                    for name in extension_names]
rows = []
for name, found, new in zip(extension_names, extension_tables,
                            results.counted_once(size_tables + extension_tables)[len(size_tables):]):
    jobs = sum(len(profile_jobs(p, p.methods or METHODS)) for p in extension_parts[name])
    gru = new.method == "gru"
    sizes = " ".join(map(str, extension_parts[name][0].sizes))
    rows.append({"profile": name, "sizes": sizes, "shipped": f"{len(found)} of {jobs}",
                 "models trained": int((gru & new.snapshot_of.isna()).sum()), "analyses": int((~gru).sum()),
                 "gru core-hours": new[gru].core_hours.sum(), "analysis core-hours": new[~gru].core_hours.sum(),
                 "core-hours": new.core_hours.sum()})
ext_costs = pd.DataFrame(rows).round(2)
_ = tables.save_table(ext_costs, "06_costs_extensions", P)
print(ext_costs.to_string(index=False))
print(f"total: {ext_costs['core-hours'].sum():.1f} core-hours beyond the six-size tables")

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
claims.scope("06_curves", "new")
claims.claim(P, "06_curves", "(none: ours)", "every reported number comes from a flattened curve",
             len(capped) == 0 if ruled else None,
             f"{len(runs) - len(capped)} of {len(runs)} runs flattened"
             + (f"; at the cap: {', '.join(f'N = {r.size} {r.variant} s{r.seed} {r.method}' for r in capped.itertuples())}"
                if len(capped) else ""))
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

# %% [markdown]
# # 08 · Beyond the paper: where exactly does the GRU switch to linear storage?
#
# **Not a paper artefact.**  The paper has six sizes (48 to 1024) and finds onions at the small ones,
# linear storage at the large ones.  Where between them does the switch happen, and is it the same
# for both decoder variants?  Here the GRU is trained on a finer grid of sizes under the laptop
# protocol and rule (`grid` profile, two seeds, `make extensions`; it shares the laptop's models at
# N = 48, 64, 128), and the three interventions of notebook 02 are run on each.  On a GPU the
# `gpu_grid` profile (`scripts/gpu_profile.py --profile gpu_grid`) adds N = 384, 512, 768, 1024 with
# the `gpu` profile's rule (so far its autoregressive GRUs of N = 384 and 512 with the three
# interventions, trained on the CPU, at the rule's 8k analysis cap), and the `large` profile the
# paper's N = 512 and 1024 under the laptop's rule (docs/profiles.md).  Each (size, variant, method)
# cell comes whole from the first of grid, large, gpu_grid that has it: converged runs before capped.
#
# **Hypothesis.**  Linear storage takes over at a size that depends on the decoder variant: earlier
# for no-input GRUs, which must hold every token until the end, than for autoregressive ones, which
# can lean on their own previous outputs (our earlier runs: no-input GRUs are linear by N = 128,
# autoregressive ones only near N = 1024).
#
# **Switch size** (our definition): the smallest N of the grid from which on (at it and every larger
# N) the linear unigram intervention succeeds on at least half the examples, mean over seeds.  The
# same size for the linear bigram intervention (two adjacent positions in one subspace) is printed
# beside it: it says whether pairs become linearly readable before single positions.

# %% tags=["parameters"]
profile = "laptop"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.profiles import extension, get_profile

P = notebook.active_profile(profile)
figures.set_style()
G = extension(P, "grid")
print(f"profile {G.name}: sizes {G.sizes}, seeds {G.seeds}, methods {G.methods}\nanalyses: {G.analysis.describe()}")

# %%
# read as far as they are in the cache (`make extensions` trains the grid; `large` and `gpu_grid`:
# their shipped results only, never trained here)
sources = [G, get_profile("large"), get_profile("gpu_grid")]
CELL = ("size", "variant", "method")


def preferred(per_source) -> pd.DataFrame:
    """Each profile's non-empty frames stacked, then each cell from the first profile that has it."""
    stacked = {}
    for profile, frames in zip(sources, per_source):
        frames = [f for f in frames if len(f)]
        if frames:
            stacked[profile.name] = pd.concat(frames, ignore_index=True)
    return tables.first_found(stacked, CELL)


runs = preferred([[results.analysis_results(p, G.methods, partial=True)] for p in sources])
print(f"{len(runs)} runs shipped or trained; grid sizes present: {sorted(set(runs['size'])) if len(runs) else []}")

# %%
if len(runs):
    table = pd.concat([tables.aggregate(r, get_profile(name), also={"gru_accuracy": "mean"})
                       for name, r in runs.groupby("profile", sort=False)],
                      ignore_index=True)
    md = "".join(f"\n### profile `{name}`\n\n" + tables.wide_markdown(t) for name, t in table.groupby("profile", sort=False))
    tables.save_table(table, "08_size_grid", P, markdown=md)
    print(md)

# %%
if len(runs):
    shown = runs.assign(method=runs.method.map(tables.METHOD_LABELS),
                        variant=runs.variant.map(tables.VARIANT_LABELS))
    grid = sns.relplot(shown, x="size", y="accuracy", hue="method", style="profile", col="variant", kind="line",
                       marker="o", errorbar="sd", height=2.6, aspect=1.3, linewidth=1)
    for variant in runs.variant.unique():  # the ceiling, in grey
        figures.draw_ceiling(grid.axes_dict[tables.VARIANT_LABELS[variant]], runs[runs.variant == variant])
    figures.log_size_axes(grid, runs["size"])
    figures.save_figure(grid.figure, "08_size_grid", P)
    plt.show()

# %% [markdown]
# ## The curves
# A number is only as good as its curve.  Every grid GRU and intervention (and the `gpu_grid`'s,
# when shipped): accuracy on its curve subset against steps, colour N, line style the variant, one
# line per seed; a curve ends where its run stopped.  The runs that reached their cap instead of
# flattening are listed: their numbers are lower bounds.

# %%
curves = preferred([[results.rnn_curves(p, partial=True).assign(method="gru"), results.analysis_curves(p, G.methods, partial=True)]
                    for p in sources])
grus = preferred([[results.rnn_results(p, partial=True).assign(method="gru")] for p in sources])
ran = pd.concat([f for f in (grus, runs) if len(f)] or [pd.DataFrame()], ignore_index=True)  # the analyses' results are `runs`
if len(curves):
    panels = {"gru": "GRU (task)", **{m: tables.METHOD_LABELS[m] for m in G.methods}}
    curves = curves.assign(panel=curves.method.map(panels), run=curves.variant + curves.seed.astype(str),
                           N=curves["size"].astype(str))
    grid = sns.relplot(curves, x="step", y="accuracy", hue="N", hue_order=[str(n) for n in sorted(set(curves["size"]))],
                       style="variant", units="run", estimator=None, col="panel", col_order=list(panels.values()),
                       col_wrap=2, kind="line", palette="viridis", height=1.9, aspect=1.4,
                       facet_kws={"sharex": False}, linewidth=0.8)
    grid.set_titles("{col_name}")
    grid.set(ylim=(-0.02, 1.02))
    figures.save_figure(grid.figure, "08_size_grid_curves", P)
    plt.show()
    capped = ran[~ran.flattened.astype(bool)][["size", "variant", "seed", "method", "steps", "accuracy"]]
    print(f"{len(ran)} runs, {len(capped)} stopped at their cap" + (f":\n{capped.to_string(index=False)}" if len(capped) else ""))

# %% [markdown]
# ## The large runs, one by one
# Every run at N >= 384 (the `large` and `gpu_grid` profiles' GRUs and interventions), one row
# each: its accuracy, the steps it ran, whether its curve flattened (if not, it stopped at its cap
# and its number is a lower bound) and its cost in core-minutes (wall time x threads / models
# trained together, a resumed run's parts summed).  docs/beyond.md reads its per-seed numbers here.

# %%
LARGE_N = 384
costs = [c for c in (results.run_costs(p, G.methods) for p in sources) if len(c)]
large = ran[ran["size"] >= LARGE_N] if len(ran) else ran
if len(large) and costs:
    keys = ["profile", "size", "variant", "method", "seed"]
    large = large.merge(pd.concat(costs)[keys + ["core_hours"]], on=keys, how="left")
    order = {m: i for i, m in enumerate(["gru", *G.methods])}
    large = (large.assign(core_minutes=(large.core_hours * 60).round().astype(int), rank=large.method.map(order))
             .sort_values(["size", "variant", "rank", "seed"])[keys[1:] + ["accuracy", "steps", "flattened", "core_minutes", "profile"]])
    tables.save_table(large, "08_large_runs", P)
    print(tables.to_markdown(large))

# %% [markdown]
# ## Check
# The switch size per variant (definition above), on the grid's and the larger profiles' sizes together;
# the hypothesis holds when both variants switch within the sizes measured and the no-input GRUs
# switch at a smaller N than the autoregressive ones.  Where a variant does not switch within the
# sizes measured, the hypothesis cannot be decided from these numbers (NOT TESTABLE) unless the
# other variant's switch already contradicts it.

# %%
def switch_size(variant: str, method: str = "linear_unigram") -> int | None:
    testable = claims.testable(runs[(runs.method == method) & (runs.variant == variant)])  # at or above the GRU's ceiling
    return claims.switch_size(testable.groupby("size")["accuracy"].mean())


switch = {variant: switch_size(variant) if len(runs) else None for variant in P.variants}
for variant, n in switch.items():
    measured = sorted(set(runs.loc[runs.variant == variant, "size"])) if len(runs) else []
    pairs = switch_size(variant, "linear_bigram") if len(runs) else None
    unigram = (f"linear storage from N = {n}" if n else
               f"no switch within the sizes measured (N = {', '.join(map(str, measured))})")
    print(f"{variant:15s} {unigram}; linear bigram " + (f"from N = {pairs}" if pairs else "does not switch either"))
# %% [markdown]
# The verdict is decided on intervals over seeds (claims.py): per variant, the smallest N from which
# every larger N's 95% t-interval of the linear unigram accuracy lies at or above 0.5 (linear for
# sure) and the smallest N from which none lies wholly below it (not ruled out).  SUPPORTED when the
# no-input GRUs are linear for sure at an N below the one where the autoregressive ones stop being
# ruled out; NOT SUPPORTED when the autoregressive ones are linear for sure at or below where the
# no-input ones become possible; UNDECIDED otherwise.

# %%
def seeds_by_size(variant: str) -> dict:  # the cells whose GRU is at or above its ceiling (claims.testable)
    return claims.seeds_by_size(claims.testable(runs[(runs.method == "linear_unigram") & (runs.variant == variant)]))


def no_input_first():
    return claims.switches_first(*(claims.switch_bounds(seeds_by_size(v)) if len(runs) else (None, None)
                                   for v in ("no_input", "autoregressive")))


bounds = {variant: claims.switch_bounds(seeds_by_size(variant)) if len(runs) else (None, None) for variant in P.variants}
for variant, (sure, possible) in bounds.items():
    print(f"{variant:15s} by intervals: linear for sure from N = {sure}, not ruled out from N = {possible}")
intervals = {f"{v} N={n}": claims.interval(x) for v in P.variants for n, x in (seeds_by_size(v).items() if len(runs) else [])}
claims.scope("08_size_grid", "new")
claims.claim(P, "08_size_grid", "(none: beyond the paper)", "no-input GRUs switch to linear storage at a smaller N",
             no_input_first,
             "; ".join(f"{tables.VARIANT_LABELS[v].lower()}: " + (f"linear unigram >= 0.5 from N = {n}" if n else
                       "no switch within the sizes measured") + " (intervals: sure from {}, possible from {})".format(*bounds[v])
                       for v, n in switch.items()), intervals)
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

# %% [markdown]
# # 04 · Reading the whole sequence out of the state: probes
#
# **Paper artefact:** the probe table (`paper/blackbox/probe.py`): *Linear*, *MLP*, *Onion*,
# *GRU - autoregressive*, *GRU - no input* probes on the frozen final state h, for both GRU variants,
# one column per N.  Exact match on the validation set (lengths 2-9; teacher forcing for the
# autoregressive probes, as the authors; free-running accuracy in the CSV).
#
# Linear and MLP probes read all positions at once.  The onion probe peels: it classifies the
# outermost token, subtracts its embedding at a learned position scale, and repeats.  The GRU probes
# are fresh decoders started from h, with or without the previous token as input.

# %% tags=["parameters"]
profile = "laptop"

# %%
import matplotlib.pyplot as plt
import numpy as np

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.analysis import PROBE_METHODS

P = notebook.active_profile(profile)
figures.set_style()
print(f"profile {P.name}: sizes {P.sizes}, seeds {P.seeds}, probes trained {P.analysis.describe()}")

# %%
runs = results.analysis_results(P, PROBE_METHODS)
table = tables.aggregate(runs, P, also={"gru_accuracy": "mean"})
free = tables.aggregate(runs, P, value="greedy_accuracy").rename(columns={"mean": "free_mean", "std": "free_std"})
table = table.merge(free[["size", "variant", "method", "free_mean", "free_std"]], on=["size", "variant", "method"])
md = tables.wide_markdown(table, row_keys=("method", "variant"))
tables.save_table(table, "04_probes", P, markdown=md)
print(md)

# %%
fig, axes = figures.accuracy_by_size(runs, P.variants, ylabel="probe accuracy", title="GRU: {variant}")
figures.save_figure(fig, "04_probes", P)
plt.show()

# %% [markdown]
# ## The paper's six sizes
# The same table over N = 48-1024 from every profile with results there (`Profile.size_sources`),
# each column's profile named, runs stopped at their cap flagged (†); saved as
# `figures/04_probes_sizes.*`.  Read from the cache, never trained here.

# %%
sized_runs, _, md = tables.across_sizes(P, PROBE_METHODS, "04_probes", row_keys=("method", "variant"))
print(md)

# %% [markdown]
# ## Claim check
# Paper (via its summaries): in small GRUs the stored tokens are accessible only autoregressively.
# Judged per variant: supported when, at every N <= 64 of the profile, the 95% t-interval over seeds
# of the best read-all-at-once probe (linear or MLP, the better per seed) lies below 0.2 and that of
# the best autoregressive probe's (onion or GRU - AR.) margin over it at or above 0.3; refuted when
# one lies wholly on the other side; undecided otherwise (claims.py).  A size whose GRU gets fewer
# than half of the validation sequences right (`claims.CEILING`; `gru_accuracy` in the CSV, grey
# lines in the figures) is not testable.

# %%
# the claims read the six-size runs at the profile's sizes: each cell from the first source that has it
# (Profile.size_sources; the five-seed campaign first), so a claim rests on every seed shipped
decided = sized_runs[sized_runs["size"].isin(P.sizes)]
decided_table = tables.aggregate(decided)
mean_of = lambda method, size, variant: claims.mean_of(decided_table, method, size, variant)
small = [n for n in P.sizes if n <= 64]


def flat_and_margin(n: int, variant: str):
    """Per seed: the best read-all-at-once probe, and the best autoregressive probe's margin over it."""
    seeds = {m: claims.seeds_of(decided, n, variant, m) for m in PROBE_METHODS}
    flat = np.maximum(seeds["probe_linear"], seeds["probe_mlp"])
    return flat, np.maximum(seeds["probe_onion"], seeds["probe_gru_ar"]) - flat


def decide_at(n: int, variant: str):
    if claims.below_ceiling(decided, n, variant):
        return None
    flat, margin = flat_and_margin(n, variant)
    return claims.all_of([claims.decide(flat, 0.2, above=False), claims.decide(margin, 0.3)])


def autoregressive_only(variant: str):
    return claims.all_of(decide_at(n, variant) for n in small) if small else None


evidence = {}
for variant in P.variants:
    evidence[variant] = {}
    for n in small:
        flat, margin = flat_and_margin(n, variant)
        evidence[variant] |= {f"best linear/MLP N={n}": claims.interval(flat),
                              f"autoregressive margin N={n}": claims.interval(margin)}
        print(f"N={n:4d} {variant:15s} best linear/MLP {claims.interval(flat).text()}  autoregressive margin "
              f"{claims.interval(margin).text()}: {claims.verdict(decide_at(n, variant))}")
def row(method, variant):
    return " / ".join(f"{mean_of(method, n, variant):.2f}" for n in P.sizes)


claims.scope("04_probes", "partial: N = 48-128; six sizes in a second table")
for variant in P.variants:
    claims.claim(P, "04_probes", "probe table",
                 f"small GRUs ({tables.VARIANT_LABELS[variant].lower()}) are decodable only autoregressively "
                 "(linear/MLP < 0.2, margin >= 0.3)", lambda: autoregressive_only(variant),
                 f"linear {row('probe_linear', variant)}, MLP {row('probe_mlp', variant)}, onion "
                 f"{row('probe_onion', variant)}, GRU-AR {row('probe_gru_ar', variant)} at N = {' / '.join(map(str, P.sizes))}",
                 evidence[variant])
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

# %% [markdown]
# # 12 · Beyond the paper: is "small GRUs are onions, large ones linear" about size or about training?
#
# **Not a paper artefact** (issue 48).  The paper reads size as the cause.  Here the representation is
# measured along training: each GRU of the `dynamics` profiles (autoregressive N = 64, 128, 256, 512;
# no input N = 64, 128; seeds 0 and 1) trains a fixed 40,000 steps, the paper's count and our cap,
# far past the step where the convergence rule stops the shipped GRU (the "overtrained" arm), and its
# state is kept at 500, 1k, 2k, 4k, 8k, 16k and 32k steps on the way (`profiles.SNAPSHOT_STEPS`).
# Training does not depend on when it stops, so the snapshot at step s *is* the GRU of a fixed
# s-step budget (`profiles.at_step`, the profile `dynamics@s`), and on the CPU that trained the
# shipped GRU the run passes through it at the rule's stopping step (checked below, curve point by
# curve point; on another CPU the bits part within the first thousands of steps, and the shipped GRU
# at its stop is then a twin of the run, not the run itself; `scripts/same_cpu_replay.py` retrains
# the shipped config on the runs' CPU and finds the run's curve exactly, docs/reproducibility.md).  On every
# snapshot, under the usual rule on the frozen GRU: the linear unigram intervention, the onion
# intervention and notebook 00's geometry number (the mean off-diagonal cosine of the state changes
# one token change makes at different positions).  The shipped GRU's own analyses stand at the
# rule's stopping step.  `make extensions` trains the profiles (`python -m onion_gru train --profile
# dynamics dynamics_large`: each run once, its snapshots with it, then their analyses); this notebook
# reads what is in the cache and says what is missing.
#
# **Claims, with their thresholds, stated before the runs** (95% t-intervals over seeds, as
# everywhere; `claims.py`):
# 1. *Small GRUs stay onions when trained on*: at every autoregressive N <= 128, after 40,000 steps
#    the linear unigram lies below 0.05 and the onion at or above 0.5.
# 2. *Linearity grows after the task has flattened* (per size and variant): the linear unigram after
#    40,000 steps exceeds that at the rule's stopping step by at least 0.1 (per seed: the shipped GRU at
#    the stop, which is the run itself on its own CPU and its twin on another, claim 4).
# 3. *A larger GRU passes through an onion phase* (autoregressive N >= 256): a run has a snapshot, its
#    task accuracy at least 0.5, where the onion reads at least 0.5 and the linear unigram below 0.05,
#    and ends with the linear unigram at or above 0.5; decided on the share of runs that do (>= 0.5).
# 4. *The run is the shipped GRU's*: every curve point up to the shipped GRU's stopping step has the
#    same loss and accuracy, and the rule replayed on the run's curve stops where the shipped one did.

# %% tags=["parameters"]
profile = "laptop"

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from onion_gru import claims, figures, notebook, results, tables
from onion_gru.geometry import change_vectors, cross_position_cosine
from onion_gru.profiles import extension, get_profile, with_snapshots
from onion_gru.train import RNNConfig, get_rnn

P = notebook.active_profile(profile)
figures.set_style()
RUNS = list(dict.fromkeys(extension(P, role) for role in ("dynamics", "dynamics_large")))
METHODS = ("linear_unigram", "onion_unigram")
for D in RUNS:
    print(f"{D.name}: sizes {D.sizes}, variants {D.variants}, seeds {D.seeds}; {D.gru.describe()}, snapshots at "
          f"{', '.join(f'{s:,}' for s in D.snapshots)}")
print(f"analyses: {P.analysis.describe()}")

# %% [markdown]
# ## The snapshots and their analyses
# One row per (run, step, method) in `figures/12_dynamics.csv`: the method's accuracy and the GRU's
# own accuracy at that step on the sequences the method is scored on (the ceiling); `task` rows are
# the GRU's validation accuracy, `geometry` rows notebook 00's cosine.  Rows with `source` "stop" are
# the shipped GRU (the run at the rule's stopping step) and its shipped analyses (at N = 256 those
# rotate with matrix_exp, the `dynamics_large` snapshots with the Cayley map: notebook 09 finds the
# two within 0.01 of each other there).

# %%
def shipped_source(n: int, variant: str, seed: int):
    """The first of the notebook profile's size sources that has this GRU (the run's stopping point)."""
    for name in P.size_sources or (P.name,):
        S = get_profile(name)
        if n in S.sizes and variant in S.variants and seed in S.seeds:
            return S
    return None


@functools.cache
def read(name: str, what: str) -> pd.DataFrame:
    """A profile's GRU results ("grus"), GRU curves ("curves") or analyses ("analyses"), read once."""
    S = get_profile(name)
    return {"grus": lambda: results.rnn_results(S, partial=True), "curves": lambda: results.rnn_curves(S, partial=True),
            "analyses": lambda: results.analysis_results(S, METHODS, partial=True)}[what]()


def of_run(frame: pd.DataFrame, n: int, variant: str, seed: int) -> pd.DataFrame:
    """The rows of one GRU (size, variant, seed) in a table of read()."""
    return frame[(frame["size"] == n) & (frame.variant == variant) & (frame.seed == seed)] if len(frame) else frame


L, off_diagonal = 9, ~torch.eye(9, dtype=torch.bool)
rows, missing = [], []
for D in RUNS:
    for S in with_snapshots(D):
        step = S.gru.max_steps
        grus = read(S.name, "grus")
        found = {(g["size"], g["variant"], g["seed"]) for _, g in grus.iterrows()}
        missing += [f"{S.name} {n} {v} s{s}" for n, v, s in S.grus() if (n, v, s) not in found]
        for g in grus.itertuples():
            cell = {"size": g.size, "variant": g.variant, "seed": g.seed, "step": step, "source": "snapshot"}
            rows.append({**cell, "method": "task", "accuracy": g.accuracy, "gru_accuracy": g.accuracy})
            model, _ = get_rnn(RNNConfig.from_profile(S, g.size, g.variant, g.seed), "cpu", train=False)
            cosine = cross_position_cosine(change_vectors(model, length=L, n=500, seed=0))
            rows.append({**cell, "method": "geometry", "accuracy": float(cosine.masked_select(off_diagonal).mean()),
                         "gru_accuracy": g.accuracy})
        for r in read(S.name, "analyses").itertuples():
            rows.append({"size": r.size, "variant": r.variant, "seed": r.seed, "step": step, "source": "snapshot",
                         "method": r.method, "accuracy": r.accuracy, "gru_accuracy": r.gru_accuracy})
    for n, variant, seed in D.grus():  # the shipped GRU: the run at the rule's stopping step
        S = shipped_source(n, variant, seed)
        gru = of_run(read(S.name, "grus"), n, variant, seed) if S else pd.DataFrame()
        if not len(gru):
            continue
        cell = {"size": n, "variant": variant, "seed": seed, "step": int(gru.steps.iloc[0]), "source": "stop"}
        rows.append({**cell, "method": "task", "accuracy": gru.accuracy.iloc[0], "gru_accuracy": gru.accuracy.iloc[0]})
        for r in of_run(read(S.name, "analyses"), n, variant, seed).itertuples():
            rows.append({**cell, "method": r.method, "accuracy": r.accuracy, "gru_accuracy": r.gru_accuracy})
dynamics = pd.DataFrame(rows, columns=["size", "variant", "seed", "step", "source", "method", "accuracy",
                                       "gru_accuracy"]).sort_values(["size", "variant", "seed", "step", "method"])
tables.save_table(dynamics, "12_dynamics", P)
print(f"{len(dynamics)} rows; snapshots not yet trained: {len(missing)}"
      + (f" (e.g. {', '.join(missing[:3])}); `python -m onion_gru train --profile dynamics dynamics_large`"
         if missing else ""))
wide = dynamics[dynamics.source == "snapshot"].pivot_table(index=["size", "variant", "method"], columns="step",
                                                           values="accuracy", aggfunc="mean")
print(wide.round(2).to_string())

# %% [markdown]
# ## Is the run the shipped GRU? (claim 4)
# The run's curve (every 500 steps on the same 1,000 validation sequences) against the shipped GRU's,
# up to the shipped GRU's stopping step: the first step whose loss differs, the largest difference in
# loss and accuracy, and where the shipped rule, replayed on the run's curve, stops it.  Equal bits
# give equal numbers at every point; the same code on another CPU does not (MKL picks its kernels by
# CPU, docs/reproducibility.md), so each side's CPU is shown.

# %%
checks = []
for D in RUNS:
    runs = read(D.name, "curves")
    for (n, variant, seed), run in (runs.groupby(["size", "variant", "seed"]) if len(runs) else []):
        S = shipped_source(n, variant, seed)
        theirs = of_run(read(S.name, "curves"), n, variant, seed) if S else pd.DataFrame()
        if not len(theirs):
            continue
        agree = results.curve_agreement(theirs, run, S.gru)
        cpus = [of_run(read(name, "grus"), n, variant, seed).cpu.iloc[0] for name in (S.name, D.name)]
        checks.append({"size": n, "variant": variant, "seed": seed, "shipped_profile": S.name,
                       "shipped_steps": int(theirs.step.max()), "points": agree["points"],
                       "first_difference": agree["first_difference"],
                       "max_loss_difference": agree["max_loss_difference"],
                       "max_accuracy_difference": agree["max_accuracy_difference"],
                       "replayed_stop": agree["stop_by_rule"], "shipped_cpu": cpus[0], "run_cpu": cpus[1]})
checks = pd.DataFrame(checks)
if len(checks):
    tables.save_table(checks, "12_dynamics_same_run", P)
    print(checks.drop(columns=["shipped_cpu", "run_cpu"]).to_string(index=False))
    print("CPUs (shipped -> run):", "; ".join(sorted({f"{a} -> {b}" for a, b in zip(checks.shipped_cpu, checks.run_cpu)})))

# %% [markdown]
# ## Along training
# Step on a log axis, one panel per size and variant; the GRU's own accuracy in grey (the ceiling),
# one thin line per seed and the mean thick; stars and dotted lines: the shipped GRU at the rule's
# stopping step (one per seed) and its shipped analyses.

# %%
panels = [f"N = {n}, {tables.VARIANT_LABELS[v].lower()}"  # autoregressive by size, then no input
          for v, n in sorted({(v, n) for D in RUNS for v in D.variants for n in D.sizes})]
shown = dynamics[dynamics.method.isin(("task",) + METHODS + ("geometry",))].assign(
    method=lambda d: d.method.map({"task": "the GRU itself", "geometry": "geometry (cosine)", **tables.METHOD_LABELS}),
    panel=lambda d: [f"N = {n}, {tables.VARIANT_LABELS[v].lower()}" for n, v in zip(d["size"], d.variant)])
palette = {"the GRU itself": "0.6", "geometry (cosine)": "C2", tables.METHOD_LABELS["linear_unigram"]: "C0",
           tables.METHOD_LABELS["onion_unigram"]: "C1"}
if len(shown):
    fig, axes = plt.subplots(2, -(-len(panels) // 2), figsize=(3.1 * -(-len(panels) // 2), 5.4), sharex=True,
                             sharey=True, layout="constrained", squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        sub = shown[shown.panel == panel]
        for (method, seed), part in sub[sub.source == "snapshot"].groupby(["method", "seed"]):
            ax.plot(part.step, part.accuracy, color=palette[method], linewidth=0.7, alpha=0.5)
        for method, part in sub[sub.source == "snapshot"].groupby("method"):
            mean = part.groupby("step").accuracy.mean()
            ax.plot(mean.index, mean.values, color=palette[method], linewidth=1.8, label=method)
        for row in sub[sub.source == "stop"].itertuples():  # the shipped GRU at the rule's stop
            ax.plot(row.step, row.accuracy, "*", color=palette[row.method], markersize=7)
            ax.axvline(row.step, color="0.5", linestyle=":", linewidth=0.6)
        ax.set(title=panel, xscale="log", ylim=(-0.05, 1.02))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy / cosine")
    handles = [plt.Line2D([], [], color=c, linewidth=1.8, label=m) for m, c in palette.items()]
    handles.append(plt.Line2D([], [], color="0.3", marker="*", linestyle=":", label="shipped GRU, the rule's stop"))
    fig.legend(handles=handles, loc="outside right center")
    figures.save_figure(fig, "12_dynamics", P)
    plt.show()

# %% [markdown]
# ## Which positions turn linear first in time?
# The linear unigram intervention of each snapshot, one position corrupted at a time (length 9;
# `analysis.EVALUATIONS`), mean over seeds.

# %%
positions = []
for D in RUNS:
    for S in with_snapshots(D):
        found = results.position_results(S, ["linear_unigram"], partial=True)
        if len(found):
            positions.append(found.assign(step=S.gru.max_steps))
positions = pd.concat(positions, ignore_index=True) if positions else pd.DataFrame()
if len(positions):
    by_step = positions.groupby(["size", "variant", "step", "position"]).accuracy.mean().reset_index()
    tables.save_table(by_step, "12_dynamics_positions", P)
    heatmaps = list(by_step.groupby(["size", "variant"]))
    fig, axes = plt.subplots(1, len(heatmaps), figsize=(3.2 * len(heatmaps), 2.8), layout="constrained", squeeze=False)
    for ax, ((n, variant), part) in zip(axes[0], heatmaps):
        table = part.pivot(index="step", columns="position", values="accuracy")
        im = ax.imshow(table.values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(title=f"N={n}, {tables.VARIANT_LABELS[variant].lower()}", xlabel="position",
               yticks=range(len(table.index)), yticklabels=[f"{s:,}" for s in table.index])
        ax.grid(False)
    axes[0, 0].set_ylabel("training step")
    fig.colorbar(im, ax=axes[0, :], shrink=0.8, label="linear unigram, one position")
    figures.save_figure(fig, "12_dynamics_positions", P)
    plt.show()

# %% [markdown]
# ## Checks

# %%
snap = dynamics[dynamics.source == "snapshot"]
stop_rows = dynamics[dynamics.source == "stop"]
last = {D.name: D.gru.max_steps for D in RUNS}
end = max(last.values())


def at_end(n: int, variant: str, method: str) -> np.ndarray:
    return claims.seeds_of(snap[snap.step == end], n, variant, method)


small_ar = [n for D in RUNS for n in D.sizes if n <= 128 and "autoregressive" in D.variants]
evidence1, intervals1 = [], {}
for n in small_ar:
    lin, onion = at_end(n, "autoregressive", "linear_unigram"), at_end(n, "autoregressive", "onion_unigram")
    if len(lin) and len(onion):
        intervals1 |= {f"linear unigram N={n}": claims.interval(lin), f"onion N={n}": claims.interval(onion)}
        evidence1.append(f"N = {n}: linear unigram {lin.mean():.2f}, onion {onion.mean():.2f} after {end:,} steps")
    else:
        evidence1.append(f"N = {n}: not yet analysed after {end:,} steps")


def stay_onions():
    return claims.all_of(claims.all_of([claims.decide(at_end(n, "autoregressive", "linear_unigram"), 0.05, above=False),
                                        claims.decide(at_end(n, "autoregressive", "onion_unigram"), 0.5)])
                         for n in small_ar)


claims.scope("12_dynamics", "new")
claims.claim(P, "12_dynamics", "(none: beyond the paper)",
             f"small autoregressive GRUs stay onions when trained on to {end:,} steps (linear < 0.05, onion >= 0.5)",
             stay_onions, "; ".join(evidence1), intervals1)


def growth(n: int, variant: str) -> np.ndarray:
    """Per seed: the linear unigram after the whole run minus at the rule's stopping step (the same run)."""
    out = []
    for seed in sorted(set(snap.seed)):
        a = snap[(snap["size"] == n) & (snap.variant == variant) & (snap.seed == seed) & (snap.step == end)
                 & (snap.method == "linear_unigram")].accuracy
        b = stop_rows[(stop_rows["size"] == n) & (stop_rows.variant == variant) & (stop_rows.seed == seed)
                      & (stop_rows.method == "linear_unigram")].accuracy
        if len(a) and len(b):
            out.append(float(a.iloc[0]) - float(b.iloc[0]))
    return np.array(out)


for D in RUNS:
    for variant in D.variants:
        for n in D.sizes:
            diffs = growth(n, variant)
            iv = claims.interval(diffs) if len(diffs) else None
            claims.claim(P, "12_dynamics", "(none: beyond the paper)",
                         f"N = {n} ({tables.VARIANT_LABELS[variant].lower()}): the linear unigram grows by >= 0.1 "
                         f"between the rule's stop and {end:,} steps",
                         lambda: claims.decide(growth(n, variant), 0.1),
                         f"gain {iv.text()}" if iv else "not yet analysed", {f"gain N={n}": iv} if iv else None)


def phases(n: int) -> list[tuple[bool, float]]:
    """Per run of the autoregressive N = n GRU: whether it has an onion snapshot (task >= 0.5, onion >=
    0.5, linear < 0.05), and its linear unigram after the whole run."""
    out = []
    for seed in sorted(set(snap.seed)):
        run = snap[(snap["size"] == n) & (snap.variant == "autoregressive") & (snap.seed == seed)]
        table = run.pivot_table(index="step", columns="method", values="accuracy")
        if not {"task", *METHODS} <= set(table.columns) or end not in table.index:
            continue
        onion = (table.task >= claims.CEILING) & (table.onion_unigram >= 0.5) & (table.linear_unigram < 0.05)
        out.append((bool(onion.any()), float(table.linear_unigram[end])))
    return out


def onion_phase(n: int) -> np.ndarray:
    """Per run: 1 if it has an onion snapshot and ends linear (linear unigram >= 0.5)."""
    return np.array([float(onion and last >= 0.5) for onion, last in phases(n)])


for n in [n for D in RUNS for n in D.sizes if n >= 256]:
    passes, runs = onion_phase(n), phases(n)
    claims.claim(P, "12_dynamics", "(none: beyond the paper)",
                 f"the autoregressive N = {n} GRU passes through an onion phase before it turns linear",
                 lambda: claims.decide(onion_phase(n), 0.5),
                 (f"{int(passes.sum())} of {len(passes)} runs: an onion snapshot in {sum(o for o, _ in runs)}, "
                  f"linear unigram {' / '.join(f'{last:.2f}' for _, last in runs)} after {end:,} steps")
                 if len(passes) else "not yet analysed",
                 {f"share N={n}": claims.interval(passes)} if len(passes) else None)

same = (len(checks) > 0 and bool((checks.max_loss_difference == 0).all() and (checks.max_accuracy_difference == 0).all()
                                 and (checks.replayed_stop == checks.shipped_steps).all()))
other_cpu = int((checks.shipped_cpu != checks.run_cpu).sum()) if len(checks) else 0
first = checks.first_difference.dropna() if len(checks) else pd.Series(dtype=float)
claims.claim(P, "12_dynamics", "(none: beyond the paper)",
             "each run passes through the shipped GRU (the same curve up to its stop, the rule stops it there)",
             same if len(checks) else None,
             (f"{len(checks)} runs ({other_cpu} on another CPU than the shipped GRU): curves first differ at step "
              f"{f'{int(first.min()):,}' if len(first) else 'none'}, largest loss difference {checks.max_loss_difference.max():.2g}, "
              f"accuracy {checks.max_accuracy_difference.max():.2g}; replayed stop = shipped stop in "
              f"{int((checks.replayed_stop == checks.shipped_steps).sum())} of {len(checks)}") if len(checks)
             else "no run trained yet")
if not P.science:
    print("(smoke profile: a pipeline check, not science)")

"""Tables, figures and their places on disk: what the notebooks share.

Results are read from the cache, never computed here: ``python -m onion_gru train`` computes them,
and a notebook that finds a result missing says which command does (``MissingResults``).  They are
aggregated into long tables with the columns size, variant, method, mean, std, n, profile, and
written as CSV and Markdown next to the figures (PDF and PNG, one plot style).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from . import cache
from .analysis import INTERVENTION_METHODS, METHODS, AnalysisConfig, analysis_entry, positions_entry
from .das import DAS_POSITIONS, DASConfig, das_cells, das_entry
from .profiles import PAPER_SIZES, Profile, get_profile
from .train import RNNConfig, get_gru, gru_entry

ROOT = Path(__file__).resolve().parents[2]
PROFILE_ENV = "ONION_GRU_PROFILE"  # nbval cannot inject parameters; CI sets this to "smoke"

METHOD_LABELS = {
    "linear_unigram": "Linear Unigram", "linear_bigram": "Linear Bigram", "onion_unigram": "Onion Unigram",
    # the probes are named as probes: notebook 07 draws them beside the interventions
    "probe_linear": "Linear probe", "probe_mlp": "MLP probe", "probe_onion": "Onion probe",
    "probe_gru_ar": "GRU probe - AR.", "probe_gru_no_input": "GRU probe - No in.",
    "accuracy": "IID (teacher forcing)", "greedy_accuracy": "IID (free-running)",
    "valid_longer_1": "length 10", "valid_longer_2": "length 11",
}
VARIANT_LABELS = {"autoregressive": "Autoregressive", "no_input": "No input"}


def active_profile(name: str) -> Profile:
    """The notebook's ``profile`` parameter, unless the environment names another."""
    return get_profile(os.environ.get(PROFILE_ENV) or name)


def figure_dir(profile: Profile) -> Path:
    """Where the profile's figures and tables go (``Profile.figures``)."""
    path = ROOT / profile.figure_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_style():
    """The one plot style of the project."""
    import seaborn as sns
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight",
                                "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
                                "ytick.labelsize": 8, "legend.fontsize": 8, "svg.hashsalt": "onion"})


def save_figure(fig, stem: str, profile: Profile) -> list[Path]:
    out = figure_dir(profile)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    fig.savefig(paths[0], metadata={"CreationDate": None})
    fig.savefig(paths[1], metadata={"Software": None})
    return paths


def save_table(table: pd.DataFrame, stem: str, profile: Profile, markdown: str | None = None) -> list[Path]:
    out = figure_dir(profile)
    table.to_csv(out / f"{stem}.csv", index=False, float_format="%.4f")
    (out / f"{stem}.md").write_text(markdown if markdown is not None else to_markdown(table))
    return [out / f"{stem}.csv", out / f"{stem}.md"]


def tidy_notebook(path: Path) -> None:
    """Make an executed notebook a function of its inputs: drop papermill's and the kernel's timings
    and number the cells (jupytext gives each conversion random cell ids), so that rerunning
    ``make reproduce`` on the same cache rewrites the same bytes.  Consecutive stream outputs are
    joined: where the kernel flushes a print is a matter of timing (a busy machine splits one print
    into two outputs)."""
    nb = json.loads(Path(path).read_text())
    for key in ("start_time", "end_time", "duration"):
        nb["metadata"].get("papermill", {}).pop(key, None)
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:02d}"
        cell["metadata"].pop("execution", None)
        cell["metadata"].pop("papermill", None)
        outputs = []
        for out in cell.get("outputs", []):
            last = outputs[-1] if outputs else {}
            if out.get("output_type") == "stream" and last.get("output_type") == "stream" \
                    and last.get("name") == out.get("name"):
                text = "".join(last["text"]) + "".join(out["text"])
                last["text"] = text.splitlines(keepends=True)
            else:
                outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    Path(path).write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def to_markdown(table: pd.DataFrame) -> str:
    cells = [[str(c) for c in table.columns]] + [[_fmt(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(table.columns))
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


class MissingResults(LookupError):
    """A notebook asked for results the cache lacks; the message names the command that computes them."""

    def __init__(self, profile: Profile, labels: list[str]):
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        super().__init__(f"{len(labels)} results of profile {profile.name!r} are not in the cache ({shown}); "
                         f"compute them with: python -m onion_gru train --profile {profile.name}"
                         + ("" if profile.shipped else f"  (with ONION_GRU_DATA={profile.data})"))


def _manifests(profile: Profile, entries: list[tuple[tuple, str, str, dict]], partial: bool):
    """(key, manifest) of each (key, kind, label, config) entry found; missing ones raise
    ``MissingResults``, or with ``partial`` are left out."""
    found, missing = [], []
    for key, kind, label, config in entries:
        manifest = cache.read_manifest(kind, label, config)
        (found if manifest else missing).append((key, manifest) if manifest else label)
    if missing and not partial:
        raise MissingResults(profile, missing)
    return found


def _gru_metrics(profile: Profile, partial: bool = False):
    """(size, variant, seed, metrics) of every GRU of the profile, from the cache's manifests;
    ``partial``: the profile may be incomplete (an extension, a GPU profile): what is there."""
    entries = [((n, v, s), "gru", *gru_entry(RNNConfig.from_profile(profile, n, v, s))) for n, v, s in profile.grus()]
    for (size, variant, seed), manifest in _manifests(profile, entries, partial):
        yield size, variant, seed, manifest["metrics"]


def load_gru(profile: Profile, size: int, variant: str, seed: int):
    """The profile's trained GRU (model, manifest) from the cache, never trained here."""
    config = RNNConfig.from_profile(profile, size, variant, seed)
    try:
        return get_gru(config, device="cpu", train=False)
    except cache.Missing:
        raise MissingResults(profile, [config.label]) from None


def gru_results(profile: Profile, partial: bool = False) -> pd.DataFrame:
    """One row per GRU of the profile: accuracies on valid (overall, greedy, by length) and longer sets."""
    return pd.DataFrame([{"cell": profile.cell, "size": size, "variant": variant, "seed": seed, "steps": m["steps"],
                          "flattened": m["flattened"],
                          "accuracy": m["valid"]["accuracy"], "greedy_accuracy": m["valid"]["greedy_accuracy"],
                          **{f"length_{k}": v for k, v in m["valid"]["by_length"].items()}, **m["longer"]}
                         for size, variant, seed, m in _gru_metrics(profile, partial)])


def gru_curves(profile: Profile, partial: bool = False) -> pd.DataFrame:
    """Validation accuracy against training steps, one row per (GRU, evaluation)."""
    return pd.DataFrame([{"cell": profile.cell, "size": size, "variant": variant, "seed": seed, **point}
                         for size, variant, seed, m in _gru_metrics(profile, partial) for point in m["curve"]])


def _analysis_metrics(profile: Profile, methods, sizes=None, variants=None, partial: bool = False):
    """(size, variant, seed, method, manifest) of each analysis, from the cache (``partial`` as in
    ``_gru_metrics``)."""
    cells = replace(profile, sizes=tuple(sizes or profile.sizes), variants=tuple(variants or profile.variants))
    entries = []
    for size, variant, seed in cells.grus():
        gru = RNNConfig.from_profile(profile, size, variant, seed)
        entries += [((size, variant, seed, method), "analysis",
                     *analysis_entry(gru, AnalysisConfig.from_profile(profile, method, gru))) for method in methods]
    for key, manifest in _manifests(profile, entries, partial):
        yield *key, manifest


def analysis_results(profile: Profile, methods, sizes=None, variants=None, partial: bool = False) -> pd.DataFrame:
    """One row per (GRU, method): accuracy (teacher-forced), free-running accuracy, floors, steps run, time."""
    rows = []
    for size, variant, seed, method, m in _analysis_metrics(profile, methods, sizes, variants, partial):
        main = next(v for v in m["metrics"].values() if isinstance(v, dict))
        rows.append({"cell": profile.cell, "size": size, "variant": variant, "seed": seed, "method": method,
                     "accuracy": m["metrics"]["accuracy"], "greedy_accuracy": main["greedy_accuracy"],
                     "floor": main.get("floor", np.nan), "chance": m["metrics"]["chance"],
                     "steps": m["metrics"]["steps"], "flattened": m["metrics"]["flattened"],
                     "train_seconds": m["train_seconds"]})
    return pd.DataFrame(rows)


def analysis_curves(profile: Profile, methods, partial: bool = False) -> pd.DataFrame:
    """Accuracy on the curve subset against steps, one row per (GRU, method, evaluation)."""
    return pd.DataFrame([{"cell": profile.cell, "size": size, "variant": variant, "seed": seed, "method": method, **point}
                         for size, variant, seed, method, m in _analysis_metrics(profile, methods, partial=partial)
                         for point in m["metrics"]["curve"]])


def position_results(profile: Profile, methods=INTERVENTION_METHODS, partial: bool = False) -> pd.DataFrame:
    """One row per (GRU, intervention, position): the accuracy with that position alone corrupted,
    its floor and examples (``analysis.evaluate_positions``, computed by ``train`` or ``evaluate``),
    and whether the intervention's own run flattened (else its numbers are lower bounds)."""
    entries = []
    for size, variant, seed in profile.grus():
        gru = RNNConfig.from_profile(profile, size, variant, seed)
        for method in methods:
            label, config = positions_entry(gru, AnalysisConfig.from_profile(profile, method, gru))
            entries.append(((size, variant, seed, method, label, config["analysis"]), "positions", label, config))
    rows = []
    for (size, variant, seed, method, label, analysis), m in _manifests(profile, entries, partial):
        flattened = cache.read_manifest("analysis", label, analysis)["metrics"]["flattened"]
        rows += [{"cell": profile.cell, "size": size, "variant": variant, "seed": seed, "method": method,
                  "flattened": flattened, **point} for point in m["metrics"]["positions"]]
    return pd.DataFrame(rows)


def das_results(profile: Profile, positions=DAS_POSITIONS) -> pd.DataFrame:
    """One row per pyvene DAS run of the profile in the cache (``das.py``: each size and variant, its
    first seed, ``positions``): accuracy of the counterfactual, floor, rank, seconds per step."""
    entries = [((gru.hidden_size, gru.variant, gru.seed), "das", *das_entry(gru, DASConfig.of(gru, p)))
               for gru in das_cells(profile) for p in positions]
    return pd.DataFrame([{"size": size, "variant": variant, "seed": seed, **m["metrics"]}
                         for (size, variant, seed), m in _manifests(profile, entries, partial=True)])


def run_costs(profile: Profile, methods=None) -> pd.DataFrame:
    """One row per model of the profile in the cache (its GRUs, ``method`` "gru", and its analyses,
    default the profile's): steps, the run's wall seconds (its whole group's, resumed runs summed),
    the group's size, torch threads, device and ``core_hours`` = seconds x threads / group size, the
    cores one model held for its run; an entry copied from another run names it in ``copied_from``."""
    entries = []
    for size, variant, seed in profile.grus():
        gru = RNNConfig.from_profile(profile, size, variant, seed)
        entries.append(((size, variant, seed, "gru"), "gru", *gru_entry(gru)))
        entries += [((size, variant, seed, method), "analysis",
                     *analysis_entry(gru, AnalysisConfig.from_profile(profile, method, gru)))
                    for method in methods or profile.methods or METHODS]
    rows = []
    for (size, variant, seed, method), m in _manifests(profile, entries, partial=True):
        env, metrics = m["environment"], m["metrics"]
        group = metrics.get("group_size", 1)
        rows.append({"profile": profile.name, "size": size, "variant": variant, "seed": seed, "method": method,
                     "steps": metrics["steps"], "seconds": m["train_seconds"], "group_size": group,
                     "threads": env["threads"], "device": "cuda" if env.get("cuda") else "cpu",
                     "core_hours": m["train_seconds"] * env["threads"] / group / 3600,
                     "copied_from": (m.get("copied_from") or {}).get("profile")})
    return pd.DataFrame(rows)


def aggregate(df: pd.DataFrame, profile: Profile, value: str = "accuracy",
              by=("size", "variant", "method")) -> pd.DataFrame:
    """Long format: mean and sample std (ddof=1, as the authors) over seeds, n, the mean steps run
    (when ``df`` has them), profile."""
    g = df.groupby(list(by), sort=False)[value]
    out = g.agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else np.nan, n="count").reset_index()
    if "steps" in df:
        out["steps"] = df.groupby(list(by), sort=False)["steps"].mean().round().astype(int).to_numpy()
    out["profile"] = profile.name
    return out


def cell(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n > 1 and not np.isnan(std) else f"{mean:.2f}"


NOT_RUN = "not run"  # a (variant, method, N) cell with no result, e.g. a profile trained in part


def filled(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with NOT_RUN in its empty cells; object dtype first, since pandas warns on a str filled into floats."""
    return table.astype(object).fillna(NOT_RUN)


def wide_markdown(agg: pd.DataFrame, row_keys=("variant", "method")) -> str:
    """The paper's layout: one row per (variant, method), one column per N, cells mean ± std."""
    texts = [cell(m, s, n) for m, s, n in zip(agg["mean"], agg["std"], agg["n"])]
    n = int(agg["n"].max())
    md = (to_markdown(_wide(agg, texts, row_keys))
          + f"\nCells: mean ± std over {n} seed(s), profile `{agg['profile'].iloc[0]}`.\n")
    if "steps" in agg:
        steps = _wide(agg, agg["steps"].map("{:,}".format), row_keys)
        md += "\nSteps run (mean over seeds; the convergence rule, profiles.Budget):\n\n" + to_markdown(steps)
    return md


def _wide(agg: pd.DataFrame, texts, row_keys) -> pd.DataFrame:
    """``texts`` (one per row of ``agg``) laid out one row per ``row_keys``, one column per N; NOT_RUN where none."""
    wide = agg.assign(text=texts).pivot_table(index=list(row_keys), columns="size", values="text", aggfunc="first",
                                              sort=False)
    wide.columns = [f"N={c}" for c in wide.columns]
    return filled(labelled(wide.reset_index()))


def labelled(wide: pd.DataFrame) -> pd.DataFrame:
    """Method and variant columns in the words the figures and tables use."""
    if "method" in wide:
        wide["method"] = wide["method"].map(lambda m: METHOD_LABELS.get(m, m))
    if "variant" in wide:
        wide["variant"] = wide["variant"].map(lambda v: VARIANT_LABELS.get(v, v))
    return wide


def first_found(results: dict[str, pd.DataFrame], keys) -> pd.DataFrame:
    """Rows of ``results`` (profile name -> its results, in order of preference) where each ``keys``
    cell (e.g. size, variant, method) comes whole from the first profile that has it, named in a
    column ``profile``: how the tables over several profiles choose between them."""
    parts, seen = [], set()
    for name, found in results.items():
        if not len(found):
            continue
        cells = list(zip(*(found[k] for k in keys)))
        found = found[[c not in seen for c in cells]]
        seen |= set(cells)
        if len(found):
            parts.append(found.assign(profile=name))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


CAPPED = "†"  # marks a cell where a seed stopped at its cap: a lower bound


def across_sizes(profile: Profile, methods, stem: str, row_keys=("variant", "method")) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The paper's table over its six sizes from the profiles in ``profile.size_sources``: at each
    (N, variant, method) the first source that has results fills the cell, its profile named; a
    cell where any seed stopped at its cap (not flattened) is flagged ``CAPPED`` in the Markdown and
    ``capped`` in the CSV; a cell no source has reads "not run".  ``methods`` None: the GRUs' own
    accuracies (teacher-forced and free-running).  Saved as ``<stem>_sizes``; returns the per-seed
    runs, the long table and the Markdown."""
    sizes = PAPER_SIZES if profile.science else tuple(sorted({n for s in profile.size_sources for n in get_profile(s).sizes}))

    def results(source: Profile) -> pd.DataFrame:
        if methods is None:
            grus = gru_results(source, partial=True)
            found = pd.concat([grus.assign(method=m, accuracy=grus[m]) for m in ("accuracy", "greedy_accuracy")]) if len(grus) else grus
        else:
            found = analysis_results(source, methods, sizes=[n for n in source.sizes if n in sizes], partial=True)
        return found[found["size"].isin(sizes)] if len(found) else found

    runs = first_found({s: results(get_profile(s)) for s in profile.size_sources}, ("size", "variant", "method"))
    tables = []
    for name, found in runs.groupby("profile", sort=False):
        agg = aggregate(found, get_profile(name))
        agg["capped"] = (~found.groupby(["size", "variant", "method"], sort=False)["flattened"].all().astype(bool)).to_numpy()
        tables.append(agg)
    table = pd.concat(tables, ignore_index=True).sort_values(["size"], kind="stable")
    texts = [cell(m, s, n) + (f" {CAPPED}" if c else "") for m, s, n, c in
             zip(table["mean"], table["std"], table["n"], table["capped"])]
    wide = _wide(table, texts, row_keys)
    for n in sizes:  # every paper size is a column, run or not
        wide[f"N={n}"] = wide.get(f"N={n}", NOT_RUN)
    wide = wide[[*row_keys, *[f"N={n}" for n in sizes]]]
    sources = table.groupby("size")["profile"].agg(lambda p: " + ".join(dict.fromkeys(p)))
    header = {k: "" for k in row_keys} | {f"N={n}": f"`{sources[n]}`" if n in sources else NOT_RUN for n in sizes}
    header[row_keys[0]] = "profile"
    md = (to_markdown(pd.concat([pd.DataFrame([header]), wide], ignore_index=True))
          + f"\nCells: mean ± std over the seeds run; {CAPPED}: a seed stopped at its cap still climbing (a lower "
            "bound); the profile row names where each column comes from (docs/profiles.md).\n")
    save_table(table, f"{stem}_sizes", profile, markdown=md)
    return runs, table, md


def mean_of(table: pd.DataFrame, method: str, size: int, variant: str) -> float:
    row = table[(table.method == method) & (table["size"] == size) & (table.variant == variant)]
    return float(row["mean"].iloc[0])


# Notebook 02's claim 1 at one size, which notebook 07 tests for other cells: the onion intervention
# works where the linear unigram one fails.  Both thresholds are far above the chance floors (0.003
# and 0.033) and far below what a working intervention reaches (0.8-1.0).
LINEAR_FAILS_BELOW = 0.05
ONION_MARGIN = 0.3


def onion_beats_linear(table: pd.DataFrame, size: int, variant: str) -> tuple[float, float, bool]:
    """(linear unigram mean, onion mean, whether linear < 0.05 and onion - linear >= 0.3)."""
    lin, onion = (mean_of(table, m, size, variant) for m in ("linear_unigram", "onion_unigram"))
    return lin, onion, bool(lin < LINEAR_FAILS_BELOW and onion - lin >= ONION_MARGIN)


# Notebook 02's last claim: an intervention that reaches 0.8 works (the GRUs themselves reach 0.9-1.0).
LINEAR_WORKS_ABOVE = 0.8
LINEAR_GAIN = 0.05


def linear_at_largest(sizes_table: pd.DataFrame, variant: str) -> tuple[pd.Series, pd.Series, bool]:
    """The linear unigram cells of a six-size table (``across_sizes``) at the smallest and the largest
    N run, and whether the largest works (>= 0.8) and beats the smallest by at least 0.05."""
    cells = sizes_table[(sizes_table.method == "linear_unigram") & (sizes_table.variant == variant)].sort_values("size")
    lo, hi = cells.iloc[0], cells.iloc[-1]
    return lo, hi, bool(hi["mean"] >= LINEAR_WORKS_ABOVE and hi["mean"] - lo["mean"] >= LINEAR_GAIN)


def accuracy_by_size(runs: pd.DataFrame, variants, ylabel: str, title: str = "{variant}", sizes=None):
    """One panel per variant: accuracy against N, one line per method, error bars = std over seeds;
    ``sizes``: the N on every panel's axis, run or not (default: the sizes each panel has)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, axes = plt.subplots(1, len(variants), figsize=(3.5 * len(variants), 2.6), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, variant in zip(axes[0], variants):
        sub = runs[runs.variant == variant].assign(method=lambda d: d.method.map(METHOD_LABELS))
        sns.pointplot(sub, x="size", y="accuracy", hue="method", ax=ax, errorbar="sd", dodge=0.3,
                      markersize=4, linewidth=1, **({"order": list(sizes)} if sizes is not None else {}))
        ax.set(title=title.format(variant=VARIANT_LABELS[variant]), xlabel="hidden size N", ylabel=ylabel,
               ylim=(-0.02, 1.02))
        ax.legend(fontsize=6, title=None)
    return fig, axes[0]


def log_size_axes(grid, sizes) -> None:
    """A seaborn grid's x axes: log N, one labelled tick per size run, y from 0 to 1."""
    grid.set(xscale="log", ylim=(-0.02, 1.02), xlabel="hidden size N")
    for ax in grid.axes.flat:
        ax.set_xticks(sorted(set(sizes)), [str(n) for n in sorted(set(sizes))], fontsize=6)
        ax.minorticks_off()


def verdict(supported: bool | None) -> str:
    return {True: "SUPPORTED", False: "NOT SUPPORTED", None: "NOT TESTABLE"}[supported]


_claims: dict[str, list[dict]] = {}  # stem -> this kernel's claims so far (one notebook run)
_scopes: dict[str, str] = {}  # stem -> how fully the notebook replicates its artefact (``scope``)


def scope(stem: str, replication: str) -> None:
    """How fully notebook ``stem`` replicates its paper artefact ("full", "partial: why", "new"): a
    column of its claims (``claim``), so that the README's table says it beside each verdict."""
    _scopes[stem] = replication


def claim(profile: Profile, stem: str, artefact: str, statement: str, supported: bool | None, evidence: str) -> None:
    """Print a claim's verdict with its evidence and record it in ``<figures>/<stem>_claims.csv``,
    rewritten with every claim of the run so far: the results tables of the README and docs/ are
    generated from these files (``onion_gru.docs``), never typed."""
    rows = _claims.setdefault(stem, [])
    rows.append({"notebook": stem, "artefact": artefact, "claim": statement, "verdict": verdict(supported),
                 "evidence": evidence, "replication": _scopes.get(stem, ""), "profile": profile.name})
    pd.DataFrame(rows).to_csv(figure_dir(profile) / f"{stem}_claims.csv", index=False)
    print(f"Claim '{statement}': {verdict(supported)} (profile {profile.name}): {evidence}")

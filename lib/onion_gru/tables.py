"""Tables: aggregation over seeds, the paper's wide layout, the tables over the paper's six sizes,
and their files (CSV and Markdown next to the figures).  Long tables have the columns size,
variant, method, mean, std, n, profile.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .profiles import PAPER_SIZES, ROOT, Profile, get_profile
from .results import analysis_results, rnn_results

METHOD_LABELS = {
    "linear_unigram": "Linear Unigram", "linear_bigram": "Linear Bigram", "onion_unigram": "Onion Unigram",
    # the probes are named as probes: notebook 07 draws them beside the interventions
    "probe_linear": "Linear probe", "probe_mlp": "MLP probe", "probe_onion": "Onion probe",
    "probe_gru_ar": "GRU probe - AR.", "probe_gru_no_input": "GRU probe - No in.",
    "accuracy": "IID (teacher forcing)", "greedy_accuracy": "IID (free-running)",
    "valid_longer_1": "length 10", "valid_longer_2": "length 11",
}
VARIANT_LABELS = {"autoregressive": "Autoregressive", "no_input": "No input"}


def figure_dir(profile: Profile) -> Path:
    """Where the profile's figures and tables go (``Profile.figures``)."""
    path = ROOT / profile.figure_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_table(table: pd.DataFrame, stem: str, profile: Profile, markdown: str | None = None) -> list[Path]:
    out = figure_dir(profile)
    table.to_csv(out / f"{stem}.csv", index=False, float_format="%.4f")
    (out / f"{stem}.md").write_text(markdown if markdown is not None else to_markdown(table))
    return [out / f"{stem}.csv", out / f"{stem}.md"]


def to_markdown(table: pd.DataFrame) -> str:
    cells = [[str(c) for c in table.columns]] + [[_fmt(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "---|" * len(table.columns))
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def aggregate(df: pd.DataFrame, profile: Profile | None = None, value: str = "accuracy",
              by=("size", "variant", "method"), also: dict | None = None, sort: bool = False) -> pd.DataFrame:
    """Long format: mean and sample std (ddof=1, as the authors) over seeds, n, the mean steps run
    (when ``df`` has them), each column of ``also`` aggregated as it says ({"floor": "mean"}), and
    the profile (``profile``'s name, else each group's first ``profile`` column)."""
    g = df.groupby(list(by), sort=sort)
    out = g[value].agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else np.nan, n="count").reset_index()
    if "steps" in df:
        out["steps"] = g["steps"].mean().round().astype(int).to_numpy()
    for column, how in (also or {}).items():
        out[column] = g[column].agg(how).to_numpy()
    out["profile"] = profile.name if profile else g["profile"].first().to_numpy()
    return out


def mean_std_text(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n > 1 and not np.isnan(std) else f"{mean:.2f}"


NOT_RUN = "not run"  # a (variant, method, N) cell with no result, e.g. a profile trained in part


def filled(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with NOT_RUN in its empty cells; object dtype first, since pandas warns on a str filled into floats."""
    return table.astype(object).fillna(NOT_RUN)


def wide_markdown(agg: pd.DataFrame, row_keys=("variant", "method")) -> str:
    """The paper's layout: one row per (variant, method), one column per N, cells mean ± std."""
    texts = [mean_std_text(m, s, n) for m, s, n in zip(agg["mean"], agg["std"], agg["n"])]
    n = int(agg["n"].max())
    md = (to_markdown(wide_table(agg, texts, row_keys))
          + f"\nCells: mean ± std over {n} seed(s), profile `{agg['profile'].iloc[0]}`.\n")
    if "steps" in agg:
        steps = wide_table(agg, agg["steps"].map("{:,}".format), row_keys)
        md += "\nSteps run (mean over seeds; the convergence rule, profiles.Budget):\n\n" + to_markdown(steps)
    return md


def wide_table(agg: pd.DataFrame, texts, row_keys) -> pd.DataFrame:
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
    ``capped`` in the CSV; a cell no source has reads "not run"; the CSV has the GRU's own accuracy
    on the sequences each method is scored on (``gru_accuracy``, mean over seeds: the ceiling).
    ``methods`` None: the GRUs' own accuracies (teacher-forced and free-running).  Saved as ``<stem>_sizes``; returns the per-seed
    runs, the long table and the Markdown."""
    sizes = PAPER_SIZES if profile.science else tuple(sorted({n for s in profile.size_sources for n in get_profile(s).sizes}))

    def results(source: Profile) -> pd.DataFrame:
        if methods is None:
            grus = rnn_results(source, partial=True)
            found = pd.concat([grus.assign(method=m, accuracy=grus[m]) for m in ("accuracy", "greedy_accuracy")]) if len(grus) else grus
        else:
            found = analysis_results(source, methods, sizes=[n for n in source.sizes if n in sizes], partial=True)
        return found[found["size"].isin(sizes)] if len(found) else found

    runs = first_found({s: results(get_profile(s)) for s in profile.size_sources}, ("size", "variant", "method"))
    tables = []
    for name, found in runs.groupby("profile", sort=False):
        agg = aggregate(found, get_profile(name), also={"gru_accuracy": "mean"} if "gru_accuracy" in found else None)
        agg["capped"] = (~found.groupby(["size", "variant", "method"], sort=False)["flattened"].all().astype(bool)).to_numpy()
        tables.append(agg)
    table = pd.concat(tables, ignore_index=True).sort_values(["size"], kind="stable")
    varies = table["n"].nunique() > 1  # then every cell says its n (the seeds differ between columns)
    texts = [mean_std_text(m, s, n) + (f" (n = {n})" if varies else "") + (f" {CAPPED}" if c else "")
             for m, s, n, c in zip(table["mean"], table["std"], table["n"], table["capped"])]
    wide = wide_table(table, texts, row_keys)
    for n in sizes:  # every paper size is a column, run or not
        wide[f"N={n}"] = wide.get(f"N={n}", NOT_RUN)
    wide = wide[[*row_keys, *[f"N={n}" for n in sizes]]]
    sources = table.groupby("size")["profile"].agg(lambda p: " + ".join(dict.fromkeys(p)))
    header = {k: "" for k in row_keys} | {f"N={n}": f"`{sources[n]}`" if n in sources else NOT_RUN for n in sizes}
    header[row_keys[0]] = "profile"
    md = (to_markdown(pd.concat([pd.DataFrame([header]), wide], ignore_index=True))
          + f"\nCells: mean ± std over the seeds run (n, where it differs between cells); {CAPPED}: a seed stopped at its cap still climbing (a lower "
            "bound); the profile row names where each column comes from (docs/profiles.md).\n")
    save_table(table, f"{stem}_sizes", profile, markdown=md)
    return runs, table, md



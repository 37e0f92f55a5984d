"""The generated parts of README.md and docs/*.md: every table of numbers there is made from the
files under figures/ (the notebooks write them), between two marker comments, never typed by hand.

    <!-- generated: claims 0[0-6]_* -->      a table of the claims recorded by those notebooks
                                              (several globs: separated by spaces)
    <!-- generated: tally 07_* 08_* -->        per notebook, how many of its claims got each verdict
    <!-- generated: sensitivity * -->         their verdicts with the thresholds looser and stricter
    ...                                       (claims.claim: figures/<stem>_claims.csv)
    <!-- /generated -->
    <!-- generated: table figures/02_interventions.md -->   a Markdown table a notebook saved
    <!-- generated: csv figures/bench.csv -->                 a CSV file (or a glob of them) as a table
    <!-- generated: profiles laptop grid -->                 profiles side by side (profiles.PROFILES)
    <!-- generated: progress large -->                       what a profile has shipped (status.py)

A number in prose is one too, inline: ``<!-- value: STEM COLUMN KEY=V[,V...] ... -->0.95<!-- /value -->``
is the COLUMN of the one row of ``figures/STEM.csv`` whose KEY columns hold those values, to 2
decimals (integers with thousands separators; a token ``.3f`` sets the format); COLUMN may be
``min(mean)``, ``max(mean)`` or ``mean(mean)`` over every row that matches.

``python -m onion_gru docs`` rewrites the blocks (``make reproduce`` runs it after the notebooks);
``--check`` lists the stale files and exits 1, and a test runs the same check, so a stale number
fails ``make test``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- generated: (\w+) ([^>]*?) -->\n)(.*?)(<!-- /generated -->)", re.S)
VALUE = re.compile(r"(<!-- value: ([^>]*?) -->)([^<\n]*)(<!-- /value -->)")


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def claims_table(patterns: str, root: Path = ROOT) -> str:
    """One row per recorded claim of the notebooks whose stems match one of ``patterns`` (globs,
    separated by spaces): artefact, notebook, claim, verdict and its evidence, as the notebooks
    computed them."""
    rows = _claims(patterns, root)
    lines = ["| paper artefact | notebook | claim | verdict | evidence (means over seeds) | replication |",
             "|---|---|---|---|---|---|"]
    for r in rows.itertuples():
        replication = getattr(r, "replication", "")
        n = getattr(r, "n", "")  # the fewest seeds of the cells it was decided on (claims.claim)
        seeds = f" (n = {int(float(n))})" if n != "" else ""
        lines.append(f"| {r.artefact} | [`{r.notebook}`](notebooks/{r.notebook}.ipynb) | {r.claim} | **{r.verdict}**{seeds} | "
                     f"{r.evidence} | {replication} |")
    return "\n".join(lines) + "\n"


def _claims(patterns: str, root: Path) -> pd.DataFrame:
    files = sorted({f for pattern in patterns.split() for f in (root / "figures").glob(f"{pattern}_claims.csv")})
    return pd.concat([pd.read_csv(f, keep_default_na=False) for f in files], ignore_index=True) if files else pd.DataFrame()


def sensitivity_table(patterns: str, root: Path = ROOT) -> str:
    """Each recorded claim's verdict as decided, and again with every threshold of it moved by
    ``claims.SENSITIVITY`` towards looser and stricter (claims.claim); "-" for a claim without a
    threshold."""
    from .claims import SENSITIVITY
    lines = [f"| notebook | claim | looser by {SENSITIVITY} | as stated | stricter by {SENSITIVITY} |", "|---|---|---|---|---|"]
    for r in _claims(patterns, root).itertuples():
        shown = [getattr(r, "looser", "") or "-", f"**{r.verdict}**", getattr(r, "stricter", "") or "-"]
        lines.append(f"| `{r.notebook}` | {r.claim} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def tally_table(patterns: str, root: Path = ROOT) -> str:
    """One row per notebook whose stem matches ``patterns``: how many of its claims got each verdict
    (the claims themselves: ``claims_table`` in docs/)."""
    rows = _claims(patterns, root)
    lines = ["| notebook | claims | verdicts |", "|---|---|---|"]
    for notebook, part in (rows.groupby("notebook", sort=True) if len(rows) else []):
        counts = part.verdict.value_counts()
        order = [v for v in ("SUPPORTED", "NOT SUPPORTED", "UNDECIDED", "NOT TESTABLE") if v in counts]
        lines.append(f"| [`{notebook}`](notebooks/{notebook}.ipynb) | {len(part)} | "
                     + ", ".join(f"{counts[v]} {v}" for v in order) + " |")
    return "\n".join(lines) + "\n"


def included_table(path: str, root: Path = ROOT) -> str:
    """A Markdown table a notebook saved under figures/, as it is."""
    return (root / path).read_text().rstrip("\n") + "\n"


def csv_table(pattern: str, root: Path = ROOT) -> str:
    """The CSV files matching ``pattern`` (a path under the root, globs allowed) as one Markdown
    table, with a ``file`` column when there are several; floats to 3 significant digits."""
    files = sorted(root.glob(pattern))
    frames = [pd.read_csv(f).assign(file=f.stem) if len(files) > 1 else pd.read_csv(f) for f in files]
    table = pd.concat(frames, ignore_index=True)
    if "file" in table:
        table = table[["file", *[c for c in table.columns if c != "file"]]]
    cell = lambda v: "" if pd.isna(v) else f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def profiles_table(names: str, root: Path = ROOT) -> str:
    """The named profiles (space-separated) side by side, from profiles.PROFILES."""
    from .profiles import get_profile
    chosen = [get_profile(n) for n in names.split()]
    budget = lambda b: (f"{b.max_steps:,} fixed" if not b.patience else
                        f"rule, {b.min_steps:,}-{b.max_steps:,} (window {b.patience:,})")
    rows = {"hidden sizes N": lambda p: ", ".join(map(str, p.sizes)), "variants": lambda p: ", ".join(p.variants),
            "seeds": lambda p: ", ".join(map(str, p.seeds)), "cell": lambda p: p.cell,
            "model steps": lambda p: budget(p.gru), "analysis steps": lambda p: budget(p.analysis),
            "curve: every / on": lambda p: f"{p.gru.eval_every:,} steps / {p.gru.curve_size:,} sequences",
            "training set": lambda p: f"{p.train_size:,}", "evaluation sets": lambda p: f"first {p.eval_size:,}",
            "analyses": lambda p: ", ".join(p.methods) if p.methods else "all eight",
            "snapshots kept at": lambda p: ", ".join(f"{s:,}" for s in p.snapshots) or "-",
            "rotation": lambda p: p.orthogonal_map, "GRU products": lambda p: p.precision, "cache": lambda p: p.data or "data/ (shipped)",
            "science": lambda p: "yes" if p.science else "no: a pipeline check"}
    lines = ["| | " + " | ".join(f"`{p.name}`" for p in chosen) + " |", "|---|" + "---|" * len(chosen)]
    lines += [f"| {label} | " + " | ".join(get(p) for p in chosen) + " |" for label, get in rows.items()]
    return "\n".join(lines) + "\n"


def progress_line(names: str, root: Path = ROOT) -> str:
    """What the named profiles have shipped (models and analyses, those at their cap), from the
    manifests of the shipped cache ``<root>/data`` alone (whatever ONION_GRU_DATA names; a checkpoint
    in progress is this machine's, not the project's)."""
    from .analysis import METHODS
    from .profiles import get_profile, with_snapshots
    from .status import job_rows
    lines = []
    for profile in map(get_profile, names.split()):  # a dynamics profile with its snapshots
        rows = [r for p in with_snapshots(profile) for r in job_rows(p, list(p.methods or METHODS), root / "data")]
        shipped = [r for r in rows if r["state"] in ("done", "capped")]
        by_kind = {kind: [r for r in shipped if r["kind"] == kind] for kind in ("gru", "analysis")}
        total = {kind: sum(r["kind"] == kind for r in rows) for kind in ("gru", "analysis")}
        lines.append(f"* `{profile.name}`: {len(by_kind['gru'])} of {total['gru']} models and {len(by_kind['analysis'])} of "
                     f"{total['analysis']} analyses shipped, {sum(r['state'] == 'capped' for r in shipped)} of them at "
                     f"their cap" + (": " + ", ".join(r["job"] for r in shipped) if 0 < len(shipped) <= 6 else ""))
    return "\n".join(lines) + "\n"


def value(spec: str, root: Path = ROOT) -> str:
    """One number of a figures/ CSV, as the module docstring's ``value`` marker describes it."""
    stem, column, *tokens = spec.split()
    table = pd.read_csv(root / "figures" / f"{stem}.csv", dtype=str)
    fmt = next((t for t in tokens if t.startswith(".")), None)
    for key, wanted in (t.split("=", 1) for t in tokens if "=" in t):
        table = table[table[key].isin(wanted.split(","))]
    reduce = re.fullmatch(r"(min|max|mean)\((\w+)\)", column)
    cells = table[reduce.group(2) if reduce else column]
    if len(cells) == 0 or (not reduce and len(cells) != 1):
        raise ValueError(f"value {spec!r}: {len(cells)} rows match, not {'some' if reduce else 'one'}")
    numbers = pd.to_numeric(cells)
    number = getattr(numbers, reduce.group(1))() if reduce else numbers.iloc[0]
    if fmt is None and not cells.str.contains(r"[.eE]").any() and float(number).is_integer():
        return f"{int(number):,}"  # a column of integers (steps, counts)
    return format(number, fmt or ".2f")


KINDS = {"claims": claims_table, "tally": tally_table, "sensitivity": sensitivity_table, "table": included_table,
         "csv": csv_table, "profiles": profiles_table, "progress": progress_line}


def render(text: str, root: Path = ROOT, relative_to: Path = ROOT) -> str:
    """``text`` with every generated block made anew; links in a claims table are written relative to
    the document's folder ``relative_to``."""
    def block(match):
        start, kind, argument, _, end = match.groups()
        body = KINDS[kind](argument.strip(), root)
        if kind in ("claims", "tally") and relative_to != root:
            body = body.replace("](notebooks/", f"]({'../' * len(relative_to.relative_to(root).parts)}notebooks/")
        return start + body + end
    text = BLOCK.sub(block, text)
    return VALUE.sub(lambda m: m.group(1) + value(m.group(2), root) + m.group(4), text)


def update(root: Path = ROOT, check: bool = False) -> list[Path]:
    """Rewrite the generated blocks of every document (``check``: only report); the stale documents."""
    stale = []
    for path in documents(root):
        if not path.exists():
            continue
        text = path.read_text()
        new = render(text, root, path.parent)
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new)
    return stale


def links(root: Path = ROOT) -> list[tuple[Path, str]]:
    """Every relative link or image path of the documents that does not resolve: (document, target)."""
    broken = []
    for path in documents(root):
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#")[0]).exists():
                broken.append((path, target))
    return broken

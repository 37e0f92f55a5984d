"""The README and docs/: generated tables fresh, every relative link resolving, the README short."""
import re

import pandas as pd
import pytest

from onion_gru import docs


def test_the_generated_tables_are_fresh():
    """A notebook rerun that changed a number, without `python -m onion_gru docs`, fails here."""
    assert docs.update(check=True) == []


def test_every_relative_link_and_image_resolves():
    assert docs.links() == []


def test_the_readme_is_short_and_opens_with_the_verdicts():
    text = (docs.ROOT / "README.md").read_text()
    assert len(re.sub(r"<!--.*?-->", "", text, flags=re.S)) <= 12_000  # what a reader sees: no markers
    first_screen = "\n".join(text.splitlines()[:40])
    assert "make reproduce" in first_screen and "<!-- generated: claims 00_* 01_* 02_interventions 03_* 04_* 05_* 06_* -->" in first_screen


def test_blocks_are_rendered_from_the_files_and_links_made_relative(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "docs").mkdir()
    pd.DataFrame([{"notebook": "01_x", "artefact": "a table", "claim": "it holds", "verdict": "SUPPORTED",
                   "evidence": "0.91", "replication": "full", "profile": "laptop", "n": None, "looser": "", "stricter": ""},
                  {"notebook": "01_x", "artefact": "a table", "claim": "cells >= 0.8", "verdict": "SUPPORTED",
                   "evidence": "0.85", "replication": "full", "profile": "laptop", "n": 5, "looser": "SUPPORTED",
                   "stricter": "UNDECIDED"}]).to_csv(tmp_path / "figures" / "01_x_claims.csv", index=False)
    pd.DataFrame({"size": [48, 64], "ms": [1.23456, float("nan")]}).to_csv(tmp_path / "figures" / "t.csv", index=False)
    stale = ("x\n<!-- generated: claims 01_* -->\nSTALE ROW\n<!-- /generated -->\n<!-- generated: csv figures/t.csv -->\n"
             "<!-- /generated -->\n<!-- generated: sensitivity 01_* -->\n<!-- /generated -->\n")
    (tmp_path / "README.md").write_text(stale)
    (tmp_path / "docs" / "d.md").write_text(stale)
    assert docs.update(tmp_path, check=True) == [tmp_path / "README.md", tmp_path / "docs" / "d.md"]
    docs.update(tmp_path)
    readme, doc = (tmp_path / "README.md").read_text(), (tmp_path / "docs" / "d.md").read_text()
    assert "| a table | [`01_x`](notebooks/01_x.ipynb) | it holds | **SUPPORTED** | 0.91 | full |" in readme
    assert "](../notebooks/01_x.ipynb)" in doc and "STALE ROW" not in readme
    assert "| cells >= 0.8 | **SUPPORTED** (n = 5) | 0.85 |" in readme
    assert "| `01_x` | it holds | - | **SUPPORTED** | - |\n| `01_x` | cells >= 0.8 | SUPPORTED | **SUPPORTED** | UNDECIDED |" in readme
    assert "| 48 | 1.23 |\n| 64 |  |" in readme
    assert docs.update(tmp_path, check=True) == []
    assert docs.links(tmp_path) == 2 * [(tmp_path / "README.md", "notebooks/01_x.ipynb")] + 2 * [
        (tmp_path / "docs" / "d.md", "../notebooks/01_x.ipynb")]  # one per claim


def test_a_tally_counts_each_notebooks_verdicts(tmp_path):
    (tmp_path / "figures").mkdir()
    pd.DataFrame({"notebook": ["07_y", "07_y", "07_y", "08_z"], "claim": list("abcd"),
                  "verdict": ["UNDECIDED", "SUPPORTED", "SUPPORTED", "NOT TESTABLE"]}).to_csv(
        tmp_path / "figures" / "07_y_claims.csv", index=False)
    assert docs.tally_table("07_*", tmp_path).splitlines()[2:] == [
        "| [`07_y`](notebooks/07_y.ipynb) | 3 | 2 SUPPORTED, 1 UNDECIDED |",
        "| [`08_z`](notebooks/08_z.ipynb) | 1 | 1 NOT TESTABLE |"]  # a stem may hold another notebook's claims


def test_a_value_in_prose_is_the_one_matching_cell_and_goes_stale_with_it(tmp_path):
    (tmp_path / "figures").mkdir()
    rows = pd.DataFrame({"size": [48, 64, 1024], "variant": ["ar", "ar", "ni"], "mean": [0.781, 0.8898, 0.95],
                         "steps": [4000, 14500, 12750]})
    rows.to_csv(tmp_path / "figures" / "t.csv", index=False)
    text = ("onion <!-- value: t min(mean) size=48,64 variant=ar -->?<!-- /value -->-"
            "<!-- value: t max(mean) size=48,64 -->?<!-- /value --> at N = 1024 "
            "<!-- value: t mean size=1024 .3f -->?<!-- /value --> after "
            "<!-- value: t steps size=64 -->?<!-- /value --> steps\n")
    (tmp_path / "README.md").write_text(text)
    assert docs.update(tmp_path, check=True) == [tmp_path / "README.md"]
    docs.update(tmp_path)
    rendered = re.sub(r"<!--.*?-->", "", (tmp_path / "README.md").read_text())
    assert rendered == "onion 0.78-0.89 at N = 1024 0.950 after 14,500 steps\n"
    assert docs.update(tmp_path, check=True) == []
    rows.assign(mean=[0.781, 0.91, 0.95]).to_csv(tmp_path / "figures" / "t.csv", index=False)
    assert docs.update(tmp_path, check=True) == [tmp_path / "README.md"]  # a new number, a stale README
    for ambiguous in ("t mean variant=ar", "t mean size=512"):  # two rows, no row: an error, not a guess
        with pytest.raises(ValueError, match="rows match"):
            docs.value(ambiguous, tmp_path)

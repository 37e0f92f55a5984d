import math

import pandas as pd

from onion_gru import report
from onion_gru.profiles import get_profile

P = get_profile("smoke")


def test_aggregate_uses_sample_std_like_the_authors():
    runs = pd.DataFrame({"size": [48, 48, 64], "variant": ["autoregressive"] * 3, "method": ["x"] * 3,
                         "accuracy": [0.2, 0.4, 0.9]})
    agg = report.aggregate(runs, P)
    row = agg[agg["size"] == 48].iloc[0]
    assert math.isclose(row["mean"], 0.3) and math.isclose(row["std"], math.sqrt(0.02)) and row["n"] == 2
    assert math.isnan(agg[agg["size"] == 64].iloc[0]["std"])  # one seed: no std
    assert list(agg.columns) == ["size", "variant", "method", "mean", "std", "n", "profile"]


def test_wide_markdown_has_the_paper_layout():
    agg = pd.DataFrame({"size": [48, 64], "variant": ["no_input"] * 2, "method": ["onion_unigram"] * 2,
                        "mean": [0.5, 0.75], "std": [0.1, 0.0], "n": [2, 2], "profile": ["laptop"] * 2})
    md = report.wide_markdown(agg)
    assert "| variant | method | N=48 | N=64 |" in md
    assert "| No input | Onion Unigram | 0.50 ± 0.10 | 0.75 ± 0.00 |" in md


def test_aggregate_and_markdown_carry_the_steps_run():
    runs = pd.DataFrame({"size": [48, 48], "variant": ["no_input"] * 2, "method": ["onion_unigram"] * 2,
                         "accuracy": [0.5, 0.7], "steps": [4_000, 9_000]})
    agg = report.aggregate(runs, P)
    assert agg["steps"].tolist() == [6_500]
    assert "| No input | Onion Unigram | 6,500 |" in report.wide_markdown(agg)


def test_smoke_figures_never_land_in_figures(tmp_path):
    assert report.figure_dir(P).parts[-3:] == ("build", "smoke", "figures")
    assert report.figure_dir(get_profile("laptop")) == report.ROOT / "figures"

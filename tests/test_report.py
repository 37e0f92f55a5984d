import math

import pandas as pd

from onion_gru import claims, notebook, profiles, tables
from onion_gru.profiles import get_profile

P = get_profile("smoke")


def test_aggregate_uses_sample_std_like_the_authors():
    runs = pd.DataFrame({"size": [48, 48, 64], "variant": ["autoregressive"] * 3, "method": ["x"] * 3,
                         "accuracy": [0.2, 0.4, 0.9]})
    agg = tables.aggregate(runs, P)
    row = agg[agg["size"] == 48].iloc[0]
    assert math.isclose(row["mean"], 0.3) and math.isclose(row["std"], math.sqrt(0.02)) and row["n"] == 2
    assert math.isnan(agg[agg["size"] == 64].iloc[0]["std"])  # one seed: no std
    assert list(agg.columns) == ["size", "variant", "method", "mean", "std", "n", "profile"]


def test_wide_markdown_has_the_paper_layout():
    agg = pd.DataFrame({"size": [48, 64], "variant": ["no_input"] * 2, "method": ["onion_unigram"] * 2,
                        "mean": [0.5, 0.75], "std": [0.1, 0.0], "n": [2, 2], "profile": ["laptop"] * 2})
    md = tables.wide_markdown(agg)
    assert "| variant | method | N=48 | N=64 |" in md
    assert "| No input | Onion Unigram | 0.50 ± 0.10 | 0.75 ± 0.00 |" in md


def test_wide_markdown_marks_a_missing_cell_not_run():
    agg = pd.DataFrame({"size": [48, 64, 48], "variant": ["no_input"] * 3,
                        "method": ["onion_unigram", "onion_unigram", "linear_unigram"], "mean": [0.5, 0.75, 0.0],
                        "std": [0.1, 0.0, 0.0], "n": [2, 2, 2], "steps": [4_000, 5_000, 4_000], "profile": ["grid"] * 3})
    md = tables.wide_markdown(agg)
    assert "| No input | Linear Unigram | 0.00 ± 0.00 | not run |" in md
    assert "| No input | Linear Unigram | 4,000 | not run |" in md and "nan" not in md


def test_aggregate_and_markdown_carry_the_steps_run():
    runs = pd.DataFrame({"size": [48, 48], "variant": ["no_input"] * 2, "method": ["onion_unigram"] * 2,
                         "accuracy": [0.5, 0.7], "steps": [4_000, 9_000]})
    agg = tables.aggregate(runs, P)
    assert agg["steps"].tolist() == [6_500]
    assert "| No input | Onion Unigram | 6,500 |" in tables.wide_markdown(agg)


def test_onion_beats_linear_decides_on_the_intervals_of_the_linear_accuracy_and_the_margin():
    def runs(lin, onion):  # per seed
        return pd.DataFrame([{"size": 48, "variant": "autoregressive", "method": m, "seed": s, "accuracy": a}
                             for m, values in (("linear_unigram", lin), ("onion_unigram", onion))
                             for s, a in enumerate(values)])
    lin, margin, ok = claims.onion_beats_linear(runs([0.0, 0.0, 0.0], [0.78, 0.80, 0.82]), 48, "autoregressive")
    assert (lin.mean, round(margin.mean, 6), ok) == (0.0, 0.8, True)
    assert claims.onion_beats_linear(runs([0.2, 0.25, 0.3], [0.9, 0.9, 0.9]), 48, "autoregressive")[2] is False  # linear works
    assert claims.onion_beats_linear(runs([0.0] * 3, [0.1] * 3), 48, "autoregressive")[2] is False  # onion too weak
    assert claims.onion_beats_linear(runs([0.0, 0.0], [0.4, 0.9]), 48, "autoregressive")[2] == claims.UNDECIDED
    low = runs([0.0, 0.0, 0.0], [0.78, 0.80, 0.82]).assign(gru_accuracy=[0.4, 0.5, 0.5, 0.9, 0.9, 0.9])
    assert claims.onion_beats_linear(low, 48, "autoregressive")[2] is None  # the linear cell's GRU below its ceiling
    assert claims.onion_beats_linear(low.assign(gru_accuracy=0.5), 48, "autoregressive")[2] is True  # at it


def test_linear_at_largest_reads_the_largest_size_run_and_decides_on_intervals():
    def runs(cells):  # {size: per-seed linear unigram accuracies}, sizes out of order as profiles add them
        return pd.DataFrame([{"size": n, "variant": "no_input", "method": "linear_unigram", "seed": s, "accuracy": a}
                             for n, values in cells.items() for s, a in enumerate(values)])
    lo, hi, ok = claims.linear_at_largest(runs({1024: [0.95, 0.96, 0.97], 48: [0.0, 0.0, 0.0], 256: [0.99] * 3}), "no_input")
    assert (lo.mean, round(hi.mean, 6), ok) == (0.0, 0.96, True)
    assert claims.linear_at_largest(runs({1024: [0.70, 0.72, 0.74], 48: [0.0] * 3}), "no_input")[2] is False  # below 0.8
    assert claims.linear_at_largest(runs({1024: [0.9] * 3, 48: [0.0] * 3}).assign(gru_accuracy=0.45), "no_input")[2] is None
    assert claims.linear_at_largest(runs({1024: [0.6, 1.0], 48: [0.0, 0.0]}), "no_input")[2] == claims.UNDECIDED


def test_linear_at_decides_on_the_linear_unigram_interval_and_is_not_testable_below_the_ceiling():
    def runs(lin, gru=(0.9, 0.9)):  # per seed; an onion row beside, which the decision must not read
        return pd.DataFrame([{"size": 256, "variant": "no_input", "method": m, "seed": s, "accuracy": a, "gru_accuracy": g}
                             for m in ("linear_unigram", "onion_unigram") for s, (a, g) in enumerate(zip(lin, gru))])
    iv, ok, why = claims.linear_at(runs([0.70, 0.71]), 256, "no_input", task=0.99)
    assert (round(iv.mean, 6), iv.n, ok, why) == (0.705, 2, True, None)  # interval [0.64, 0.77]
    assert round(iv.lo, 3) == 0.641  # 0.705 - 12.706 x 0.00707 / sqrt(2)
    assert claims.linear_at(runs([0.68, 0.72]), 256, "no_input", task=0.99)[1:] == (claims.UNDECIDED, None)  # [0.45, 0.95]
    assert claims.linear_at(runs([0.30, 0.90]), 256, "no_input", task=0.99)[1] == claims.UNDECIDED
    assert claims.linear_at(runs([0.0, 0.01]), 256, "no_input", task=0.99)[1:] == (False, None)
    assert claims.linear_at(runs([0.70, 0.71]), 256, "no_input", task=0.45)[1:] == (None, "below the ceiling")
    # the task learned, but its GRU gets under half of the length-9 sequences right (and with both, the task first)
    assert claims.linear_at(runs([0.70, 0.71], gru=(0.3, 0.4)), 256, "no_input", task=0.99)[1:] == (
        None, "length 9: below the ceiling")
    assert claims.linear_at(runs([0.70, 0.71], gru=(0.3, 0.4)), 256, "no_input", task=0.45)[2] == "below the ceiling"
    assert claims.linear_at(runs([0.68, 0.72]), 256, "no_input", task=None) == (None, None, "not run")  # not shipped
    assert claims.linear_at(runs([0.68, 0.72]), 128, "no_input", task=0.99) == (None, None, "not run")  # no linear cell


def test_tidy_notebook_makes_outputs_independent_of_timing(tmp_path):
    """Two executions of one notebook differ in timings, random cell ids and where a print was
    split into stream outputs; tidied, they are the same bytes."""
    import json

    def executed(split: bool, cell_id: str, seconds: float) -> dict:
        text = [["36 runs shipped"], [" or trained\n", "next line\n"]] if split else [["36 runs shipped or trained\n", "next line\n"]]
        outputs = [{"name": "stdout", "output_type": "stream", "text": t} for t in text]
        outputs.append({"name": "stderr", "output_type": "stream", "text": ["warning\n"]})
        cell = {"cell_type": "code", "id": cell_id, "metadata": {"papermill": {"duration": seconds}},
                "outputs": outputs, "source": "print(...)", "execution_count": 1}
        return {"cells": [cell], "metadata": {"papermill": {"duration": seconds}}, "nbformat": 4, "nbformat_minor": 5}

    paths = []
    for i, (split, cell_id, seconds) in enumerate([(False, "a1b2", 1.0), (True, "c3d4", 2.5)]):
        paths.append(tmp_path / f"{i}.ipynb")
        paths[-1].write_text(json.dumps(executed(split, cell_id, seconds)))
        notebook.tidy_notebook(paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    (cell,) = json.loads(paths[1].read_text())["cells"]
    assert cell["id"] == "cell-00" and [o["name"] for o in cell["outputs"]] == ["stdout", "stderr"]
    assert cell["outputs"][0]["text"] == ["36 runs shipped or trained\n", "next line\n"]


def test_smoke_figures_never_land_in_figures(tmp_path):
    assert tables.figure_dir(P).parts[-3:] == ("build", "smoke", "figures")
    assert tables.figure_dir(get_profile("laptop")) == profiles.ROOT / "figures"


def test_across_sizes_combines_sources_flags_capped_runs_and_marks_the_rest_not_run(cache_root, monkeypatch, tmp_path):
    """Manifest-only entries (what a GPU window ships) are read as they are, never trained or deleted:
    the first source with a cell fills it, a run stopped at its cap is flagged, the other paper sizes
    read "not run", and each column names its profile."""
    import json
    from dataclasses import asdict, replace

    from onion_gru import cache
    from onion_gru.analysis import AnalysisConfig, analysis_entry
    from onion_gru.train import RNNConfig

    monkeypatch.setattr(tables, "figure_dir", lambda profile: tmp_path)
    laptop = replace(get_profile("laptop"), size_sources=("large", "gpu"))

    def ship(profile, size, accuracy, flattened):
        gru = RNNConfig.from_profile(profile, size, "no_input", 0)
        config = AnalysisConfig.from_profile(profile, "probe_linear", gru)
        path = cache.entry_dir("analysis", *analysis_entry(gru, config))
        path.mkdir(parents=True)
        (path / "manifest.json").write_text(json.dumps({"config": asdict(config), "train_seconds": 1.0, "metrics": {
            "accuracy": accuracy, "chance": 0.0, "steps": 2_500, "flattened": flattened, "curve": [],
            "valid": {"accuracy": accuracy, "greedy_accuracy": accuracy}}}))
        return path
    paths = [ship(get_profile("large"), 1024, 0.97, False), ship(get_profile("gpu"), 1024, 0.5, True),
             ship(get_profile("gpu"), 48, 0.25, True)]
    runs, table, md = tables.across_sizes(laptop, ["probe_linear"], "x")
    assert list(table["profile"]) == ["gpu", "large"] and list(table["capped"]) == [False, True]
    assert "| profile |  | `gpu` | not run | not run | not run | not run | `large` |" in md
    assert "| No input | Linear probe | 0.25 | not run | not run | not run | not run | 0.97 † |" in md
    assert len(runs) == 2 and (tmp_path / "x_sizes.csv").exists() and all((p / "manifest.json").exists() for p in paths)


def test_first_found_takes_each_cell_whole_from_the_first_profile_that_has_it():
    first = pd.DataFrame({"size": [512, 512, 1024], "variant": ["a", "a", "a"], "accuracy": [0.1, 0.2, 0.3]})
    second = pd.DataFrame({"size": [512, 48], "variant": ["a", "a"], "accuracy": [0.9, 0.4]})
    found = tables.first_found({"large": first, "empty": pd.DataFrame(), "laptop": second}, ("size", "variant"))
    assert list(found["accuracy"]) == [0.1, 0.2, 0.3, 0.4]
    assert list(found["profile"]) == ["large", "large", "large", "laptop"]
    assert tables.first_found({"empty": pd.DataFrame()}, ("size",)).empty


def test_counted_once_keeps_each_run_under_the_first_table_and_drops_copies():
    from onion_gru.results import COST_COLUMNS, counted_once

    def table(profile, *runs):  # runs: (size, method, seconds, copied_from)
        return pd.DataFrame([{**dict.fromkeys(COST_COLUMNS), "profile": profile, "size": n, "variant": "autoregressive",
                              "seed": 0, "method": m, "steps": 100, "seconds": s, "copied_from": c}
                             for n, m, s, c in runs], columns=COST_COLUMNS)
    laptop = table("laptop", (48, "gru", 10.0, None), (48, "onion_unigram", 5.0, None))
    grid = table("grid", (48, "gru", 10.0, None), (32, "gru", 3.0, None), (32, "gru", 3.0, None))  # shares laptop's N = 48
    check = table("check", (48, "gru", 10.0, "grid"), (48, "linear_unigram", 7.0, None), (48, "gru", 11.0, None))
    kept = counted_once([laptop, grid, check, table("empty")])
    assert [len(t) for t in kept] == [2, 1, 2, 0]
    assert kept[1]["size"].tolist() == [32]  # the laptop's GRU is not the grid's, and the grid's N = 32 counts once
    assert kept[2].method.tolist() == ["linear_unigram", "gru"]  # a copy goes; another run of the same model stays


def test_curve_agreement_finds_the_first_differing_point_and_replays_the_rule_on_the_run():
    from onion_gru.profiles import Budget
    from onion_gru.results import curve_agreement

    steps = [500 * k for k in range(1, 11)]
    accuracy = [0.2, 0.5, 0.8, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    reference = pd.DataFrame({"step": steps, "loss": [1.0 / k for k in range(1, 11)], "accuracy": accuracy})
    rule = Budget(40_000, 500, min_steps=2_000, patience=1_500, min_gain=0.01)  # flat from 2,500: stops at 4,000
    same = curve_agreement(reference, reference.copy(), rule)
    assert same == {"points": 10, "first_difference": None, "max_loss_difference": 0.0,
                    "max_accuracy_difference": 0.0, "stop_by_rule": 4_000}
    run = reference.copy()
    run.loc[run.step == 3_000, "accuracy"] = 0.951  # accuracy alone differs: a difference all the same
    run.loc[run.step == 4_500, "loss"] += 0.25
    other = curve_agreement(reference, run, rule)
    assert other["first_difference"] == 3_000 and other["max_loss_difference"] == 0.25
    assert math.isclose(other["max_accuracy_difference"], 0.001)
    assert curve_agreement(reference, run.iloc[:6], rule) == {  # to 3,000: the loss change at 4,500 is not in it
        "points": 6, "first_difference": 3_000, "max_loss_difference": 0.0,
        "max_accuracy_difference": other["max_accuracy_difference"], "stop_by_rule": None}  # ends before the rule stops

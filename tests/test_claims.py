"""Verdicts decided on intervals over seeds (claims.py): known answers of the t-interval, and the
three outcomes of a decision and of a claim over several cells."""
import math

import pytest

from onion_gru import claims


def test_the_t_interval_of_two_and_five_seeds():
    iv = claims.interval([0.0, 1.0])  # mean 0.5, sd 0.7071, se 0.5, t(0.975, 1) = 12.706
    assert (iv.mean, iv.n) == (0.5, 2) and iv.lo == pytest.approx(0.5 - 6.353) and iv.hi == pytest.approx(0.5 + 6.353)
    iv = claims.interval([0.80, 0.82, 0.84, 0.86, 0.88])  # sd 0.031623, se 0.014142, t(0.975, 4) = 2.776
    assert iv.lo == pytest.approx(0.84 - 2.776 * 0.014142, abs=1e-5) and iv.hi == pytest.approx(0.84 + 0.039259, abs=1e-5)
    assert claims.interval([0.3, 0.3, 0.3]).lo == claims.interval([0.3, 0.3, 0.3]).hi == pytest.approx(0.3)
    one = claims.interval([0.7])
    assert one.n == 1 and math.isnan(one.lo) and one.text() == "0.70 (n = 1, no interval)"


def test_a_decision_is_supported_refuted_or_undecided_by_where_the_interval_lies():
    assert claims.decide([0.95, 0.96, 0.97], 0.9) is True  # [0.935, 0.985] above 0.9
    assert claims.decide([0.5, 0.6, 0.7], 0.9) is False  # [0.35, 0.85] below
    assert claims.decide([0.85, 0.95], 0.9) == claims.UNDECIDED  # two seeds straddling
    assert claims.decide([0.92], 0.9) == claims.UNDECIDED  # one seed: no interval
    assert claims.decide([], 0.9) is None
    assert claims.decide([0.0, 0.0], 0.05, above=False) is True  # equal seeds: decided
    assert claims.decide([0.3, 0.31], 0.05, above=False) is False


def test_a_claim_over_cells_fails_on_any_refuted_cell_and_waits_on_any_undecided_one():
    U = claims.UNDECIDED
    assert claims.all_of([True, True]) is True
    assert claims.all_of([True, U, False]) is False
    assert claims.all_of([True, U, None]) is None
    assert claims.all_of([True, U]) == U
    assert [claims.verdict(d) for d in (True, False, None, U)] == ["SUPPORTED", "NOT SUPPORTED", "NOT TESTABLE",
                                                                  "UNDECIDED"]


def test_seeds_of_reads_one_cell_in_seed_order():
    import pandas as pd
    runs = pd.DataFrame({"size": [48, 48, 48, 64], "variant": ["a", "a", "a", "a"], "method": ["m", "m", "x", "m"],
                         "seed": [1, 0, 0, 0], "accuracy": [0.2, 0.1, 0.9, 0.5]})
    assert claims.seeds_of(runs, 48, "a", "m").tolist() == [0.1, 0.2]


def test_switch_bounds_and_which_switches_first():
    sure = {48: [0.0, 0.0, 0.0], 96: [0.2, 0.9], 128: [0.9, 0.91, 0.92], 256: [1.0, 1.0]}
    assert claims.switch_bounds(sure) == (128, 96)  # 96 straddles 0.5: not ruled out, not sure
    late = {48: [0.0] * 3, 96: [0.0] * 3, 128: [0.1] * 3, 256: [0.9] * 3}
    assert claims.switch_bounds(late) == (256, 256)
    assert claims.switches_first(claims.switch_bounds(sure), claims.switch_bounds(late)) is True
    assert claims.switches_first(claims.switch_bounds(late), claims.switch_bounds(sure)) is False
    straddling = {48: [0.0] * 3, 128: [0.2, 0.9], 256: [0.2, 0.9]}
    assert claims.switch_bounds(straddling) == (None, 128)
    assert claims.switches_first(claims.switch_bounds(straddling), (256, 128)) == claims.UNDECIDED
    never = {48: [0.0] * 3, 128: [0.1] * 3}
    assert claims.switch_bounds(never) == (None, None)
    assert claims.switches_first((None, None), (None, None)) is None


def test_seeds_by_size_reads_each_size_in_seed_order():
    import pandas as pd
    runs = pd.DataFrame({"size": [64, 48, 48], "seed": [0, 1, 0], "accuracy": [0.5, 0.2, 0.1]})
    assert {n: v.tolist() for n, v in claims.seeds_by_size(runs).items()} == {48: [0.1, 0.2], 64: [0.5]}


def test_thresholds_move_together_towards_stricter_or_looser_and_come_back():
    seeds = [0.85, 0.86, 0.87]  # interval [0.835, 0.895]
    assert claims.decide(seeds, 0.8) is True and claims.exceeds(0.33, 0.3) and claims.exceeds(0.0, 0.05, above=False)
    with claims.harder_by(0.1):  # 0.9 (above) and -0.05 (below)
        assert claims.decide(seeds, 0.8) is False and not claims.exceeds(0.33, 0.3)
        assert not claims.exceeds(0.0, 0.05, above=False) and claims.decide([0.0, 0.0], 0.05, above=False) is False
    with claims.harder_by(-0.1):  # 0.7 and 0.15
        assert claims.decide([0.74, 0.75, 0.76], 0.8) is True and claims.exceeds(0.1, 0.05, above=False)
    assert claims.decide(seeds, 0.8) is True and claims._harder == 0.0  # restored


def test_a_claim_given_as_a_function_records_its_verdict_looser_and_stricter(tmp_path, monkeypatch):
    import pandas as pd

    from onion_gru.profiles import get_profile
    monkeypatch.setattr(claims, "figure_dir", lambda profile: tmp_path)
    P = get_profile("smoke")
    claims.claim(P, "t", "art", "cells >= 0.8", lambda: claims.decide([0.85, 0.86, 0.87], 0.8), "e")
    claims.claim(P, "t", "art", "no threshold", True, "e", notebook="02_x")  # a second set of a notebook's claims
    rows = pd.read_csv(tmp_path / "t_claims.csv", keep_default_na=False)
    assert rows[["verdict", "looser", "stricter"]].values.tolist() == [["SUPPORTED", "SUPPORTED", "NOT SUPPORTED"],
                                                                       ["SUPPORTED", "", ""]]
    assert rows.notebook.tolist() == ["t", "02_x"]

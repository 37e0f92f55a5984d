import os
import signal
import subprocess
import sys
import time

import pytest

from onion_gru import cache
from onion_gru.analysis import EVALUATIONS
from onion_gru.jobs import Job, entry, evaluation_entry, is_done, missing_jobs
from onion_gru.run import _run_submitit, evaluations, needs, next_group, plan_groups, run_jobs
from onion_gru.profiles import PROFILES, get_profile
from onion_gru.train import RNNConfig

SMOKE = get_profile("smoke").check(sizes=[16], variants=["autoregressive"])


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "onion_gru", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, **kw)


def test_paper_profile_is_the_authors_protocol():
    p = PROFILES["paper"]
    assert p.sizes == (48, 64, 128, 256, 512, 1024)
    assert p.variants == ("autoregressive", "no_input") and len(p.seeds) == 5
    assert (p.gru.max_steps, p.analysis.max_steps, p.batch_size) == (40_000, 60_000, 256)
    assert p.gru.patience == p.analysis.patience == 0  # fixed step counts, no convergence rule
    assert (p.train_size, p.eval_size) == (1_000_000, 5_000)
    config = RNNConfig.from_profile(p, 64, "autoregressive", 0)
    assert (config.lr, config.weight_decay) == (1e-3, 0.1)
    assert len(p.grus()) == 60  # the 60 GRUs that every analysis shares
    assert PROFILES["smoke"].grus() == [(16, "autoregressive", 0), (16, "no_input", 0),
                                        (32, "autoregressive", 0), (32, "no_input", 0)]


@pytest.mark.parametrize("args, message", [
    (["--profile", "huge"], "unknown profile"),
    (["--profile", "smoke", "--sizes", "48"], "unknown size"),
    (["--profile", "smoke", "--variants", "lstm"], "unknown variant"),
    (["--profile", "smoke", "--seeds", "9"], "unknown seed"),
    (["--profile", "smoke", "--methods", "probe_magic"], "unknown method"),
])
def test_bad_input_names_choices_exits_nonzero_and_writes_nothing(tmp_path, args, message):
    result = cli("train", *args, env={"ONION_GRU_DATA": str(tmp_path / "data")})
    assert result.returncode == 2
    assert message in result.stderr and "choose from" in result.stderr
    assert not (tmp_path / "data").exists()


def test_groups_share_size_and_method_and_respect_the_cap():
    laptop = PROFILES["laptop"]
    grus, analyses = [Job(laptop, *c) for c in laptop.grus()], [Job(laptop, *c, "probe_mlp") for c in laptop.grus()]
    groups = plan_groups(analyses + grus, max_group=3)
    assert sorted(j.label for g in groups for j in g) == sorted(j.label for j in analyses + grus)  # each job once
    for group in groups:
        assert len({(j.size, j.method) for j in group}) == 1 and len(group) <= 3
    # 4 jobs of a kind under a cap of 3: two groups of 2, not 3 + 1; largest size first
    assert sorted(len(g) for g in groups) == [2] * 12 and groups[0][0].size == 128
    assert [len(g) for g in plan_groups(grus, max_group=4)] == [4, 4, 4]
    # a group holds consecutive jobs (one variant, in profile order): they converge together
    assert [[j.label for j in g] for g in plan_groups(grus, max_group=2)][-2:] == [
        ["N48-autoregressive-s0", "N48-autoregressive-s1"], ["N48-no_input-s0", "N48-no_input-s1"]]


def test_an_analysis_group_waits_only_for_its_own_grus():
    profile = get_profile("laptop")
    grus, analyses = [Job(profile, *c) for c in profile.grus()], [Job(profile, *c, "onion_unigram") for c in profile.grus()]
    groups = plan_groups(analyses + grus, max_group=2)
    assert [g[0].method for g in groups] == [None] * 6 + ["onion_unigram"] * 6  # GRUs first
    needed = needs(groups)
    labels = [[j.label for j in g] for g in groups]
    gru_group = {j.label: i for i, g in enumerate(groups) for j in g if j.method is None}
    n48_ni = labels.index(["N48-no_input-s0-onion_unigram", "N48-no_input-s1-onion_unigram"])
    assert needed[n48_ni] == {gru_group["N48-no_input-s0"]}  # both seeds' GRUs train in that one group
    assert all(not needed[i] for i, g in enumerate(groups) if g[0].method is None)
    pending = list(range(len(groups)))
    assert next_group(pending, set(), needed) == 0  # a GRU group first
    # every GRU group started, only the N = 128 ones done: the N = 128 analyses may start, N = 48's not
    pending = [i for i in pending if groups[i][0].method is not None]
    done = {i for i, g in enumerate(groups) if g[0].method is None and g[0].size == 128}
    first = next_group(pending, done, needed)
    assert groups[first][0].size == 128 and groups[first][0].method == "onion_unigram"
    assert next_group([n48_ni], done, needed) is None
    assert next_group([n48_ni], done | {gru_group["N48-no_input-s0"]}, needed) == n48_ni


def test_grus_and_their_analyses_in_one_call(cache_root):
    gru_jobs, analysis_jobs = missing_jobs(SMOKE, ["probe_linear"])
    results = run_jobs(analysis_jobs + gru_jobs, workers=1)  # the GRU runs first whatever the order
    assert [r["label"] for r in results] == ["N16-autoregressive-s0", "N16-autoregressive-s0-probe_linear"]
    assert missing_jobs(SMOKE, ["probe_linear"]) == ([], [])


def test_a_group_writes_one_entry_per_model(cache_root):
    both = get_profile("smoke").check(sizes=[16])
    gru_jobs, analysis_jobs = missing_jobs(both, ["onion_unigram"])
    results = run_jobs(gru_jobs, workers=1, max_group=2)
    assert [r["group_size"] for r in results] == [2, 2]
    assert len(list(cache_root.glob("gru/*/manifest.json"))) == 2
    run_jobs(analysis_jobs, workers=1, max_group=2)
    assert missing_jobs(both, ["onion_unigram"]) == ([], [])


def test_no_group_starts_after_the_deadline(cache_root):
    gru_jobs, _ = missing_jobs(SMOKE, [])
    assert run_jobs(gru_jobs, workers=1, deadline=time.time() - 1) == []
    assert missing_jobs(SMOKE, [])[0] == gru_jobs


def test_train_then_nothing_left(cache_root):
    gru_jobs, analysis_jobs = missing_jobs(SMOKE, ["probe_linear"])
    assert [j.label for j in gru_jobs] == ["N16-autoregressive-s0"]
    run_jobs(gru_jobs, workers=1)
    run_jobs(analysis_jobs, workers=1)
    assert missing_jobs(SMOKE, ["probe_linear"]) == ([], [])


def test_killed_cli_leaves_no_partial_entry_and_rerun_continues(tmp_path, monkeypatch):
    env = {"ONION_GRU_DATA": str(tmp_path / "data")}
    args = ["train", "--profile", "smoke", "--methods", "none", "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "onion_gru", *args], env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list((tmp_path / "data").glob("gru/*/weights.pt")) and time.time() < deadline:
        time.sleep(0.05)  # wait until the first model is being written, then kill mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for entry in (tmp_path / "data" / "gru").iterdir():
        if (entry / "manifest.json").exists():  # a finished entry is whole and valid
            assert cache.read_entry(entry) is not None
    result = cli(*args, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    monkeypatch.setenv("ONION_GRU_DATA", env["ONION_GRU_DATA"])
    assert missing_jobs(get_profile("smoke"), []) == ([], [])


def test_submitit_executor_runs_jobs_locally(cache_root, tmp_path):
    jobs, _ = missing_jobs(SMOKE, [])
    results = _run_submitit(plan_groups(jobs, 4), {"cluster": "local", "folder": str(tmp_path / "submitit"), "cpus": 1, "minutes": 10})
    assert [r["label"] for r in results] == ["N16-autoregressive-s0"]
    assert all(is_done(j) for j in jobs)


def test_environment_yml_repeats_the_pyproject_pins():
    import tomllib
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    listed = {line.strip()[2:] for line in (root / "environment.yml").read_text().splitlines()
              if line.strip().startswith("- ") and "==" in line}
    assert pins == listed


def test_a_gru_flattened_before_a_lower_cap_is_reused_not_retrained(cache_root):
    """Two budgets that differ only in the cap: a run that flattened before the lower cap is the same
    run under the higher one, so its entry is copied (weights, results, a note); one stopped by its
    cap is not."""
    from dataclasses import replace as swap

    from onion_gru.jobs import reuse_replayed
    from onion_gru.profiles import PROFILES
    smoke = get_profile("smoke").check(sizes=[16], variants=["autoregressive"])
    low = swap(smoke, name="low", gru=swap(smoke.gru, max_steps=60, min_gain=2.0))  # flattens at its second point (40)
    high = swap(low, name="high", gru=swap(low.gru, max_steps=200))
    PROFILES["low"] = low
    try:
        run_jobs(missing_jobs(low, [])[0], workers=1)
        (job,) = missing_jobs(high, [])[0]
        line = reuse_replayed(job)
        assert line and "reused from profile low" in line and "flattened at 40 of its 60-step cap" in line
        assert is_done(job) and missing_jobs(high, []) == ([], [])
        copied = cache.read_manifest(*entry(job))
        assert copied["config"]["budget"]["max_steps"] == 200 and copied["copied_from"]["profile"] == "low"
        capped = swap(low, name="capped", gru=swap(low.gru, max_steps=30, min_steps=40))  # its cap comes first
        PROFILES["capped"] = capped
        run_jobs(missing_jobs(capped, [])[0], workers=1)
        (other,) = missing_jobs(swap(capped, name="higher", gru=swap(capped.gru, max_steps=300)), [])[0]
        assert reuse_replayed(other) is None
    finally:
        PROFILES.pop("low", None)
        PROFILES.pop("capped", None)


def test_train_with_several_profiles_schedules_each_shared_entry_once(tmp_path):
    """smoke_grid's GRUs are the smoke profile's (same configs): asked for both, each is listed once."""
    result = cli("train", "--profile", "smoke", "smoke_grid", "--methods", "none", "--dry-run",
                 env={"ONION_GRU_DATA": str(tmp_path)})
    listed = [line.strip() for line in result.stdout.splitlines() if line.startswith("   ")]
    assert result.returncode == 0 and sorted(listed) == sorted(set(listed)) and len(listed) == 4


@pytest.mark.parametrize("command", [["where", "data"], ["evaluate"], ["status"]])
def test_every_command_refuses_an_unknown_profile_with_the_choices(command):
    result = cli(*command[:1], "--profile", "huge", *command[1:])
    assert result.returncode == 2 and "unknown profile 'huge'" in result.stderr and "choose from" in result.stderr


def test_trained_interventions_are_evaluated_by_position_and_on_length_nine_once(cache_root):
    """Only the trained interventions of a plan (not its probes, not a cell still untrained) get their
    evaluations (one position at a time on their own set and on the length-9 set; on the length-9 set
    beside the GRU's own accuracy), written to the cache once; results.position_results reads nine
    positions back, with the GRU's accuracy on the same sequences, results.matched_results the
    length-9 scores."""
    from onion_gru import results
    plan = [(SMOKE, ["onion_unigram", "probe_linear", "linear_unigram"])]
    assert evaluations(plan) == []  # nothing trained yet
    gru_jobs, analysis_jobs = missing_jobs(SMOKE, ["onion_unigram", "probe_linear", "probe_onion"])
    run_jobs(gru_jobs + analysis_jobs, workers=1)
    from onion_gru.status import job_rows
    state = lambda: {r["job"]: r["state"] for r in job_rows(SMOKE, ["onion_unigram", "probe_linear"])
                     if r["kind"] in EVALUATIONS}
    label = "N16-autoregressive-s0-onion_unigram"
    named = [f"{label} (one position)", f"{label} (length 9)", f"{label} (one position, length 9)"]
    assert state() == dict.fromkeys(named, "missing")  # status names them
    lines = evaluations(plan)
    assert state() == dict.fromkeys(named, "done")
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["by", "length", "by"]
    assert evaluations(plan) == [] and len(list(cache_root.glob("positions*/*/manifest.json"))) == 2
    rows = results.position_results(SMOKE, ["onion_unigram"], kind="positions")
    assert rows.position.tolist() == list(range(9)) and rows.examples.is_monotonic_decreasing
    assert rows.gru_accuracy.isna().all()  # lengths 2-9: the matched evaluation is not its ceiling
    # the examples at position p: the evaluation sequences longer than p, an even count (the pairing)
    from onion_gru import data
    from onion_gru.analysis import AnalysisConfig, evaluate_positions, get_analysis
    from onion_gru.train import RNNConfig, get_rnn
    gru_config = RNNConfig.from_profile(SMOKE, 16, "autoregressive", 0)
    analysis = AnalysisConfig.from_profile(SMOKE, "onion_unigram", gru_config)
    tokens, lengths = data.load("valid", size=analysis.eval_size)
    assert rows.examples.tolist() == [int((lengths > p).sum()) // 2 * 2 for p in range(9)]
    # and the numbers read back are the cached models' own, evaluated again
    gru, onion = get_rnn(gru_config, "cpu", train=False)[0], get_analysis(gru_config, analysis, "cpu")[0]
    again = evaluate_positions(gru, onion, tokens, lengths)[0]
    assert rows.accuracy.tolist() == [r["accuracy"] for r in again] and rows.floor.tolist() == [r["floor"] for r in again]
    # the length-9 score: the onion on the "intervention" set, and the GRU's own accuracy on the same sequences
    from onion_gru.analysis import evaluate_method
    from onion_gru.train import evaluate
    nine, nine_lengths = data.load("intervention", size=analysis.eval_size)
    (scored,), (own,) = evaluate_method(gru, onion, nine, nine_lengths), evaluate(gru, nine, nine_lengths)
    (matched,) = results.matched_results(SMOKE, ["onion_unigram"]).itertuples()
    assert (nine_lengths == 9).all() and matched.examples == len(nine)
    assert (matched.accuracy, matched.floor, matched.gru_accuracy) == (scored["accuracy"], scored["floor"], own["accuracy"])
    # one position at a time on the length-9 set: every position on all its sequences, the GRU's ceiling beside
    nine_rows = results.position_results(SMOKE, ["onion_unigram"])
    assert nine_rows.examples.tolist() == [len(nine)] * 9 and (nine_rows.gru_accuracy == own["accuracy"]).all()
    assert nine_rows.accuracy.tolist() == [r["accuracy"] for r in evaluate_positions(gru, onion, nine, nine_lengths)[0]]
    # the ceiling beside every analysis: on "valid", the GRU's validation accuracy (the same sequences)
    scored = results.analysis_results(SMOKE, ["onion_unigram", "probe_linear", "probe_onion"])
    own_valid = results.rnn_results(SMOKE).set_index(["size", "variant", "seed"])["accuracy"]
    assert set(scored.eval_set) == {"valid"} and len(scored) > 1
    assert scored.gru_accuracy.tolist() == [own_valid[r.size, r.variant, r.seed] for r in scored.itertuples()]
    # crossed (the no-input puzzle): the GRU reading the intervention's patch of the same corruptions
    # is the intervention's score, and the unpatched state its floor (tests/test_crossed.py: the states)
    from onion_gru.crossed import crossed
    probe = get_analysis(gru_config, AnalysisConfig.from_profile(SMOKE, "probe_onion", gru_config), "cpu")[0]
    (read,) = crossed(gru, onion, probe, tokens, lengths)
    (scored_valid,) = evaluate_method(gru, onion, tokens, lengths)
    assert (read["gru_reads_intervention"], read["gru_reads_unpatched"]) == (scored_valid["accuracy"], scored_valid["floor"])
    assert read["gru_reads_unpatched"] > 0  # the corruption kept the token (about 1/30) on some examples
    costs = results.run_costs(SMOKE)  # the models in the cache, whatever the profile lacks
    assert sorted(costs.method) == ["gru", "onion_unigram", "probe_linear", "probe_onion"]
    assert (costs.core_hours == costs.seconds * costs.threads / costs.group_size / 3600).all() and (costs.seconds > 0).all()


def test_an_evaluation_that_is_another_is_stored_once():
    """A linear method's own set is the length-9 set: its per-position numbers at length 9 are its
    "positions" entry (the same config, the same key); the onion's are an entry of their own."""
    from onion_gru.analysis import evaluations_of, stored_as
    assert stored_as("positions_length9", "linear_unigram") == "positions" == stored_as("positions", "onion_unigram")
    assert stored_as("positions_length9", "onion_unigram") == "positions_length9"
    assert evaluations_of("linear_bigram") == ["positions", "matched"]
    assert evaluations_of("onion_unigram") == ["positions", "matched", "positions_length9"]
    job = Job(SMOKE, 16, "autoregressive", 0, "linear_unigram")
    assert evaluation_entry(job, "positions_length9") == evaluation_entry(job, "positions")
    onion = Job(SMOKE, 16, "autoregressive", 0, "onion_unigram")
    assert evaluation_entry(onion, "positions_length9")[2]["evaluation"] == "one position, length 9"


def test_where_prints_a_profiles_folders():
    assert cli("where", "--profile", "smoke", "data").stdout.strip() == "build/smoke-data"
    assert cli("where", "--profile", "laptop", "notebooks").stdout.strip() == "notebooks"
    assert cli("where", "--profile", "grid", "figures").stdout.strip() == "figures/grid"

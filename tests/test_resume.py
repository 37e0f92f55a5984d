"""The one training loop (loop.fit): a group checkpointed mid-run and resumed ends with the bits of
one never stopped (weights and curves), a checkpoint of another group or thread count is discarded,
and a shipped entry trained again retraces its recorded curve."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from onion_gru import cache, checkpoint
from onion_gru.analysis import AnalysisConfig, get_analyses
from onion_gru.profiles import Budget
from onion_gru.train import RNNConfig, get_rnns, rnn_entry, rnn_hash
from onion_gru.loop import Stopped

BUDGET = Budget(60, 10, min_steps=20, patience=20, min_gain=0.0, curve_size=100)
GRUS = [RNNConfig(16, "autoregressive", 0, BUDGET, train_size=5_000),
        RNNConfig(16, "no_input", 1, BUDGET, train_size=5_000)]


def at_step(n):
    """A ``stop`` that turns true after the n-th optimizer step."""
    calls = iter(range(1, 10 ** 9))
    return lambda: next(calls) >= n


def curves(manifests):
    return [[(p["step"], p["accuracy"], p["loss"]) for p in m["metrics"]["curve"]] for m in manifests]


def assert_same_states(a, b):
    for (name, value), other in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(value, other), name


def test_a_stopped_and_resumed_gru_group_is_the_uninterrupted_one(cache_root, tmp_path, monkeypatch, capsys):
    whole, whole_manifests = get_rnns(GRUS, "cpu", eval_size=100)
    monkeypatch.setenv("ONION_GRU_DATA", str(tmp_path / "other"))
    with pytest.raises(Stopped, match="step 25 of at most 60"):
        get_rnns(GRUS, "cpu", eval_size=100, stop=at_step(25))  # between evaluation points
    (info,) = checkpoint.checkpoints()
    assert info["step"] == 25 and info["meta"]["members"] == [f"{c.label}-{rnn_hash(c)}" for c in GRUS]
    assert not list((tmp_path / "other").glob("gru/*/manifest.json"))
    monkeypatch.setenv(checkpoint.ELSEWHERE_ENV, "1")  # allowed, but the same machine: nothing to say
    capsys.readouterr()
    resumed, manifests = get_rnns(GRUS, "cpu", eval_size=100)
    assert "resuming from its checkpoint at step 25\n" in capsys.readouterr().out
    assert_same_states(resumed, whole)
    assert curves(manifests) == curves(whole_manifests)
    assert [m["metrics"]["steps"] for m in manifests] == [60, 60]
    assert checkpoint.checkpoints() == []  # the finished entries took its place


def test_a_stopped_and_resumed_analysis_group_is_the_uninterrupted_one(cache_root, tmp_path, monkeypatch):
    """The linear unigram intervention draws corruptions and Gumbel noise from its own generators:
    those resume too."""
    configs = [AnalysisConfig("linear_unigram", rnn_hash(g), BUDGET, seed=g.seed, train_size=5_000, eval_size=100,
                              orthogonal_map="cayley") for g in GRUS]
    get_rnns(GRUS, "cpu", eval_size=100)
    whole, whole_manifests = get_analyses(GRUS, configs, "cpu")
    for entry in cache_root.glob("analysis/*"):  # the same GRUs, no analysis yet
        for f in entry.iterdir():
            f.unlink()
        entry.rmdir()
    with pytest.raises(Stopped):
        get_analyses(GRUS, configs, "cpu", stop=at_step(13))
    resumed, manifests = get_analyses(GRUS, configs, "cpu")
    assert_same_states(resumed, whole)
    assert curves(manifests) == curves(whole_manifests)


def test_a_checkpoint_saved_otherwise_is_kept_and_refused_until_discarded(cache_root, monkeypatch, capsys):
    with pytest.raises(Stopped):
        get_rnns(GRUS, "cpu", eval_size=100, stop=at_step(15))
    saved = checkpoint.checkpoints()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    with pytest.raises(checkpoint.CheckpointMismatch, match=r"step 15 was saved with \d+ torch threads where this "
                       r"run has 7; kept: rerun with OMP_NUM_THREADS=\d+"):
        get_rnns(GRUS, "cpu", eval_size=100)
    monkeypatch.undo()
    monkeypatch.setenv("ONION_GRU_DATA", str(cache_root))
    with pytest.raises(checkpoint.CheckpointMismatch, match="another group of 2 models sharing a member"):
        get_rnns(GRUS[:1], "cpu", eval_size=100)  # another group holding the first GRU
    assert checkpoint.checkpoints() == saved  # both refusals left it as it was
    for field, value in (("torch", "0.0"), ("cpu_model", "another CPU"), ("code_version", -1)):
        info_path = next((cache_root / "checkpoints" / "gru").glob("*.json"))
        info = json.loads(info_path.read_text())
        info_path.write_text(json.dumps({**info, "meta": {**info["meta"], field: value}}))
        with pytest.raises(checkpoint.CheckpointMismatch, match=f"{value} where this run has"):
            get_rnns(GRUS, "cpu", eval_size=100)
        info_path.write_text(json.dumps(info))
    info_path = next((cache_root / "checkpoints" / "gru").glob("*.json"))
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "meta": {**info["meta"], "cpu_model": "another CPU"}}))
    monkeypatch.setenv(checkpoint.ELSEWHERE_ENV, "1")  # train --continue-elsewhere: another CPU is accepted
    with pytest.raises(Stopped, match="step 16 of"):
        get_rnns(GRUS, "cpu", eval_size=100, stop=at_step(1))  # resumed at 15, one step more
    assert "(saved with CPU another CPU where this run has" in capsys.readouterr().out
    info_path.write_text(json.dumps({**json.loads(info_path.read_text()), "meta": {**info["meta"], "code_version": -1}}))
    with pytest.raises(checkpoint.CheckpointMismatch, match="nothing here continues it"):
        get_rnns(GRUS, "cpu", eval_size=100)  # but not other code
    monkeypatch.setenv(checkpoint.DISCARD_ENV, "1")  # train --discard-checkpoints
    get_rnns(GRUS[:1], "cpu", eval_size=100)
    assert checkpoint.checkpoints() == []
    (aside,) = (cache_root / "checkpoints" / "discarded").iterdir()
    assert sorted(f.suffix for f in aside.iterdir()) == [".json", ".pt"]  # set aside, not deleted


def test_a_killed_cli_run_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL mid-run (no clean stop): the rerun starts from the periodic checkpoint, not step 0."""
    env = {**os.environ, "ONION_GRU_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
           "ONION_GRU_CHECKPOINT_SECONDS": "0"}
    args = [sys.executable, "-m", "onion_gru", "train", "--profile", "smoke", "--sizes", "32",
            "--variants", "autoregressive", "--methods", "none", "--workers", "1"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not checkpoint.checkpoints(tmp_path / "data") and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (info,) = checkpoint.checkpoints(tmp_path / "data")
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resuming from its checkpoint at step {info['step']}" in result.stdout
    assert "1 of 1 jobs finished" in result.stdout and checkpoint.checkpoints(tmp_path / "data") == []


def test_sigterm_checkpoints_like_the_deadline_and_the_same_command_resumes(tmp_path):
    """kill -TERM (a session ending before --stop-after): the running group saves its step and the run
    exits cleanly, reporting it stopped; the rerun continues from that step."""
    env = {**os.environ, "ONION_GRU_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
           "ONION_GRU_CHECKPOINT_SECONDS": "0"}
    args = [sys.executable, "-m", "onion_gru", "train", "--profile", "smoke", "--sizes", "32",
            "--variants", "autoregressive", "--methods", "none", "--workers", "1"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not checkpoint.checkpoints(tmp_path / "data") and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "0 of 1 jobs finished, 1 stopped with a checkpoint" in out
    (info,) = checkpoint.checkpoints(tmp_path / "data")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert f"resuming from its checkpoint at step {info['step']:,}" in done.stdout
    assert "1 of 1 jobs finished" in done.stdout


def test_stop_after_checkpoints_and_the_same_command_finishes(tmp_path):
    env = {**os.environ, "ONION_GRU_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "onion_gru", "train", "--profile", "smoke", "--sizes", "16",
            "--variants", "autoregressive", "--methods", "none", "--workers", "1"]
    stopped = subprocess.run(args + ["--stop-after", "0.0001"], env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert "0 of 1 jobs finished, 1 stopped with a checkpoint" in stopped.stdout
    assert "stopped: N16-autoregressive-s0: stopped at step 1 of at most 60" in stopped.stdout
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert "resuming from its checkpoint at step 1" in done.stdout and "1 of 1 jobs finished" in done.stdout


def test_a_shipped_gru_retrained_by_the_loop_retraces_its_recorded_curve():
    """The shipped laptop N = 48 GRU (seed 0), trained again for 1,000 steps by ``loop.fit``: the
    first two points of its recorded curve come back (to float rounding of another CPU: measured on
    an Intel Xeon against the AMD EPYC that trained it, the same accuracies and losses within 2e-7)."""
    from onion_gru.profiles import get_profile
    from onion_gru.train import train_rnns
    config = RNNConfig.from_profile(get_profile("laptop"), 48, "autoregressive", 0)
    shipped = cache.read_manifest("gru", *rnn_entry(config), root=cache.DEFAULT_ROOT)["metrics"]["curve"][:2]
    _, (metrics,) = train_rnns([replace(config, budget=replace(config.budget, max_steps=1000))], "cpu", eval_size=1000)
    assert [p["step"] for p in metrics["curve"]] == [p["step"] for p in shipped] == [500, 1000]
    for point, recorded in zip(metrics["curve"], shipped):
        assert point["accuracy"] == pytest.approx(recorded["accuracy"], abs=0.002)
        assert point["loss"] == pytest.approx(recorded["loss"], rel=1e-4)


class ScriptedTrainee:
    """Two members with scripted curves: member 0 flat at 0.5 (the rule stops it at its first chance),
    member 1 climbing by 0.02 an evaluation (it runs to the cap).  The curves count evaluations in a
    buffer of the module, so a resumed run continues them; the weights take real AdamW steps."""

    def __init__(self):
        self.module = torch.nn.Linear(3, 2)
        self.module.register_buffer("evaluations", torch.zeros(()))
        self.generators, self.device = [], torch.device("cpu")

    def loss(self, x, l):
        return (self.module(x[..., :3].float().mean(1) / 30) ** 2).diagonal()  # member k: its own row

    def accuracies(self, tokens, lengths):
        self.module.evaluations += 1
        return [0.5, min(1.0, 0.02 * float(self.module.evaluations))]

    def member_state(self, k):
        return {"weight": self.module.weight[k].detach().clone()}


def test_a_member_stopped_before_the_first_checkpoint_resumes_like_the_others(cache_root):
    from types import SimpleNamespace
    from onion_gru.loop import fit
    budget = Budget(80, 10, min_steps=20, patience=10, min_gain=0.01)
    configs = [SimpleNamespace(budget=budget, lr=1e-2, weight_decay=0.0, batch_size=4, seed=s) for s in (0, 1)]
    data = (torch.randint(0, 30, (64, 9)), torch.full((64,), 9))

    def run(stop=None, checkpoint_=None):
        torch.manual_seed(0)
        trainee = ScriptedTrainee()
        return fit(trainee, configs, data, data, checkpoint_, stop)[0]
    whole = run()
    assert whole.stopped == [20, 80] and whole.flattened == [True, False]
    group = checkpoint.Checkpoint("gru", [("a", {"a": 1}), ("b", {"b": 1})])
    group.every = 10 ** 9  # no periodic checkpoint: the first one is the stop's, at step 45
    with pytest.raises(Stopped, match="step 45"):
        run(at_step(45), group)
    (info,) = checkpoint.checkpoints()
    assert info["step"] == 45
    resumed = run(None, group)
    without_time = lambda schedule: [[{k: v for k, v in point.items() if k != "seconds"} for point in curve]
                                     for curve in schedule.curves]
    assert resumed.stopped == whole.stopped and without_time(resumed) == without_time(whole)
    for a, b in zip(resumed.states, whole.states):
        assert torch.equal(a["weight"], b["weight"])

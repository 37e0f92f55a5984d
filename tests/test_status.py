"""``python -m onion_gru status``: done, capped, in-progress, damaged and missing jobs, and the hours left."""
import pytest

from onion_gru import cache
from onion_gru.jobs import missing_jobs
from onion_gru.run import run_jobs
from onion_gru.profiles import get_profile
from onion_gru.status import job_rows, report
from onion_gru.train import RNNConfig, get_rnns, rnn_entry
from onion_gru.loop import Stopped

SMOKE = get_profile("smoke").check(sizes=[16])


def test_status_counts_each_state_and_estimates_from_recorded_rates(cache_root):
    gru_jobs, _ = missing_jobs(SMOKE, [])
    run_jobs(gru_jobs[:1], workers=1)  # the autoregressive GRU: done (or capped)
    other = RNNConfig.from_profile(SMOKE, 16, "no_input", 0)
    calls = iter(range(1, 100))
    with pytest.raises(Stopped):
        get_rnns([other], "cpu", eval_size=SMOKE.eval_size, stop=lambda: next(calls) >= 30)
    rows = {r["job"]: r for r in job_rows(SMOKE, ["probe_linear"])}
    first = rows["N16-autoregressive-s0"]
    assert first["state"] in ("done", "capped") and first["step"] in (20, 40, 60) and first["hours_left"] == 0
    assert rows["N16-no_input-s0"]["state"] == "in progress" and rows["N16-no_input-s0"]["step"] == 30
    assert rows["N16-autoregressive-s0-probe_linear"]["state"] == "missing"
    # the in-progress GRU: the finished one's steps (at most the cap) less its 30, at the finished one's rate
    manifest = cache.read_manifest("gru", *rnn_entry(RNNConfig.from_profile(SMOKE, 16, "autoregressive", 0)))
    rate = manifest["metrics"]["seconds_per_step"]
    assert rows["N16-no_input-s0"]["hours_left"] == pytest.approx(max(first["step"] - 30, 0) * rate / 3600)
    assert rows["N16-autoregressive-s0-probe_linear"]["hours_left"] is None  # no probe has run: unknown
    text = report([SMOKE], lambda p: ["probe_linear"])
    assert text.splitlines()[0].startswith("profile smoke: ")
    assert "1 in progress, 0 damaged, 2 missing of 4 jobs" in text and "(+ 2 jobs with no recorded rate" in text
    assert "in progress N16-no_input-s0  step 30" in text
    # one definition of done: an altered model is damaged for status as for train (which recomputes it)
    weights = cache.entry_dir("gru", *rnn_entry(RNNConfig.from_profile(SMOKE, 16, "autoregressive", 0))) / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    assert job_rows(SMOKE, [])[0]["state"] == "damaged" and [j.label for j in missing_jobs(SMOKE, [])[0]] == [
        "N16-autoregressive-s0", "N16-no_input-s0"]


def test_status_cli_names_bad_profiles(tmp_path):
    import os
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "onion_gru", "status", "--profile", "huge"], capture_output=True,
                            text=True, env={**os.environ, "ONION_GRU_DATA": str(tmp_path)})
    assert result.returncode == 2 and "choose from" in result.stderr

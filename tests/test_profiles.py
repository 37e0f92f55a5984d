"""The convergence rule (profiles.Budget) on synthetic curves, and the per-member schedule."""
import pytest
import torch

from onion_gru.profiles import PROFILES, Budget
from onion_gru.loop import Schedule

RULE = Budget(40_000, 500, min_steps=4_000, patience=3_000, min_gain=0.01)


def stop_step(budget: Budget, accuracy_at) -> int:
    """The step at which a run whose accuracy at step s is accuracy_at(s) stops."""
    steps, accuracies = [], []
    for step in range(1, budget.max_steps + 1):
        if budget.evaluates(step):
            steps.append(step)
            accuracies.append(accuracy_at(step))
            if budget.stops(steps, accuracies):
                return step
    raise AssertionError("never stopped")


def test_a_fixed_budget_runs_every_step():
    assert stop_step(Budget.fixed(6_000, 1_000), lambda s: 0.5) == 6_000
    assert Budget.fixed(6_000, 1_000).evaluates(6_000) and not Budget.fixed(6_000, 1_000).evaluates(1_500)


def test_a_plateau_stops_one_patience_after_its_last_gain():
    # rises 0.02 per 500 steps up to step 5,000, then flat: the window (5,000, 8,000] gains nothing
    assert stop_step(RULE, lambda s: min(s, 5_000) / 500 * 0.02) == 8_000


def test_a_flat_curve_runs_the_minimum():
    assert stop_step(RULE, lambda s: 0.0) == 4_000
    assert stop_step(RULE, lambda s: 1.0) == 4_000


def test_a_steady_climb_runs_to_the_cap():
    # 0.004 per 500 steps is 0.024 per patience window: above min_gain to the end
    assert stop_step(RULE, lambda s: s / 500 * 0.004) == 40_000
    assert not RULE.flattened(list(range(500, 40_001, 500)), [s / 500 * 0.004 for s in range(500, 40_001, 500)])


def test_a_slow_climb_below_the_threshold_stops():
    # 0.001 per 500 steps is 0.006 per window: below min_gain, so it stops at the minimum
    assert stop_step(RULE, lambda s: s / 500 * 0.001) == 4_000


def test_a_floor_waits_for_the_curve_to_leave_chance():
    floored = Budget(40_000, 500, min_steps=4_000, patience=3_000, min_gain=0.01, floor=0.05)
    assert stop_step(floored, lambda s: 0.0) == 40_000  # never left chance: runs to its cap, not flattened
    assert not floored.flattened(list(range(500, 40_001, 500)), [0.0] * 80)
    # at 0 until step 10,000, then a jump and a plateau: flat one patience after the jump
    assert stop_step(floored, lambda s: 0.0 if s < 10_000 else 0.5) == 13_000
    # a curve that left chance early stops where it would without the floor
    climb = lambda s: min(s, 5_000) / 500 * 0.02
    assert stop_step(floored, climb) == stop_step(RULE, climb) == 8_000


def test_noise_on_a_plateau_does_not_keep_a_run_going():
    g = torch.Generator().manual_seed(0)
    noise = {s: 0.005 * torch.randn(1, generator=g).item() for s in range(500, 40_001, 500)}
    assert stop_step(RULE, lambda s: 0.8 * min(s, 10_000) / 10_000 + noise[s]) <= 14_000


def test_a_recorded_curve_replays_to_the_live_stop():
    """stop_index on a curve recorded to the cap finds the step the live rule stops at, a shorter
    patience or cap stops no later, and a curve that ends before the rule stops gives None."""
    climb = lambda s: min(s, 5_000) / 500 * 0.02
    steps = list(range(500, 40_001, 500))
    curve = [climb(s) for s in steps]
    assert steps[RULE.stop_index(steps, curve)] == stop_step(RULE, climb) == 8_000
    shorter = Budget(40_000, 500, min_steps=4_000, patience=1_000, min_gain=0.01)
    assert steps[shorter.stop_index(steps, curve)] == 6_000
    assert steps[Budget(5_000, 500, min_steps=4_000, patience=3_000, min_gain=0.01).stop_index(steps, curve)] == 5_000
    assert RULE.stop_index(steps[:10], curve[:10]) is None  # ends at 5,000, the rule would stop at 8,000


def test_the_schedule_keeps_each_member_as_it_stopped():
    """Member 0 plateaus at once, member 1 keeps climbing to step 6,000: each keeps the state it had
    at its own stopping step, and its curve ends there."""
    budget = Budget(10_000, 500, min_steps=2_000, patience=1_000, min_gain=0.01)
    schedule = Schedule(budget, 2)
    for step in range(500, 10_001, 500):
        points = [{"accuracy": 0.3}, {"accuracy": min(step, 6_000) / 6_000}]
        if schedule.record(step, points, lambda k: {"w": torch.tensor([k, step])}):
            break
    assert schedule.stopped == [2_000, 7_000] and schedule.flattened == [True, True]
    assert [s["w"].tolist() for s in schedule.states] == [[0, 2_000], [1, 7_000]]
    assert [c[-1]["step"] for c in schedule.curves] == [2_000, 7_000]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_stays_within_the_papers_step_counts(name):
    p = PROFILES[name]
    assert p.gru.max_steps <= 40_000 and p.analysis.max_steps <= 60_000
    assert p.gru.min_steps <= p.gru.max_steps and p.analysis.min_steps <= p.analysis.max_steps


def test_a_snapshot_is_its_profile_with_a_shorter_fixed_budget():
    from onion_gru.jobs import Job, key, trained_by, unique
    from onion_gru.profiles import at_step, get_profile, with_snapshots
    dynamics = get_profile("dynamics")
    snapshot = get_profile("dynamics@2000")
    assert snapshot == at_step(dynamics, 2000) and snapshot.gru == Budget.fixed(2000, dynamics.gru.eval_every)
    assert snapshot.snapshots == () and [p.name for p in with_snapshots(dynamics)][:2] == ["dynamics", "dynamics@500"]
    for bad in ("laptop@500", "dynamics@750", "dynamics@50000"):  # a ruled profile; off the curve; past the run
        with pytest.raises(ValueError, match="snapshot"):
            get_profile(bad)
    run = Job(dynamics, 64, "autoregressive", 0)
    made = trained_by(run)
    assert [j.profile.gru.max_steps for j in made] == [40_000, *dynamics.snapshots]
    assert trained_by(Job(snapshot, 64, "autoregressive", 0)) == [Job(snapshot, 64, "autoregressive", 0)]
    # the run's own job stays; its snapshots' GRU jobs go (the run makes them); their analyses stay
    analysis = Job(snapshot, 64, "autoregressive", 0, "onion_unigram")
    assert unique([made[1], run, analysis]) == [run, analysis]
    assert len({key(j) for j in made}) == len(made)  # every snapshot its own entry

"""Planner behaviour on analytic energies: minima found, bounds held, batching, warm start."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planners import CEMConfig, CEMPlanner, MPPIConfig, MPPIPlanner, Planner, make_planner
from planners.base import bounds_in_dtype

CONFIGS = {"cem": CEMConfig, "mppi": MPPIConfig}
PLANNERS = {"cem": CEMPlanner, "mppi": MPPIPlanner}


def build(name: str, seed: int = 0, **overrides) -> Planner:
    base = {"action_low": [-1.0, -1.0, -1.0], "action_high": [1.0, 1.0, 1.0]}
    return PLANNERS[name](CONFIGS[name](**{**base, **overrides}), seed=seed)


def bowl(target: torch.Tensor):
    """Sum over steps of squared distance to `target` (E, H, A) or (H, A): minimum at target."""

    def cost(actions: torch.Tensor) -> torch.Tensor:  # (E, S, H, A) -> (E, S)
        goal = target if target.dim() == 3 else target.unsqueeze(0)
        return (actions - goal.unsqueeze(1)).square().sum(dim=(-1, -2))

    return cost


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_finds_quadratic_bowl_minimum(name: str) -> None:
    planner = build(name, horizon=1, num_samples=256, iterations=8)
    target = torch.tensor([[0.3, -0.6, 0.1]])  # (H, A)
    plan = planner.plan(bowl(target))
    assert plan.shape == (1, 1, 3)
    assert torch.allclose(plan[0], target, atol=0.05), plan


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_finds_multi_step_sum_minimum(name: str) -> None:
    planner = build(name, horizon=3, num_samples=256, iterations=10)
    target = torch.tensor([[0.5, 0.0, -0.5], [0.2, 0.4, 0.0], [-0.3, -0.2, 0.6]])  # (H, A)
    plan = planner.plan(bowl(target))
    assert torch.allclose(plan[0], target, atol=0.08), plan


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_minimum_outside_box_lands_on_the_bound(name: str) -> None:
    planner = build(name, horizon=1, num_samples=128, iterations=6)
    plan = planner.plan(bowl(torch.tensor([[3.0, -3.0, 0.0]])))
    assert plan[0, 0, 0] == pytest.approx(1.0, abs=0.02)
    assert plan[0, 0, 1] == pytest.approx(-1.0, abs=0.02)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_each_env_converges_to_its_own_optimum_in_one_call(name: str) -> None:
    planner = build(name, horizon=2, num_samples=256, iterations=8)
    targets = torch.tensor([[0.5, 0.5, 0.0], [-0.5, 0.0, 0.5], [0.0, -0.7, -0.2]])  # (E, A)
    targets = targets[:, None].expand(-1, 2, -1)  # (E, H, A)
    calls: list[tuple[int, ...]] = []

    def cost(actions: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(actions.shape))
        return bowl(targets)(actions)

    plan = planner.plan(cost, num_envs=3)
    assert torch.allclose(plan, targets, atol=0.08), plan
    assert calls == [(3, 256, 2, 3)] * 8  # one batched call per iteration, no per-env loop


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_batched_equals_each_env_alone(name: str) -> None:
    """Env e in a batch sees exactly what a lone planner seeded `seed + e` sees."""
    targets = torch.tensor([[[0.2, -0.4, 0.9]], [[-0.8, 0.1, 0.0]], [[0.0, 0.3, -0.3]]])
    batched = build(name, horizon=1, seed=7).plan(bowl(targets), num_envs=3)
    for e in range(3):
        alone = build(name, horizon=1, seed=7 + e).plan(bowl(targets[e]), num_envs=1)
        torch.testing.assert_close(batched[e], alone[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["cem", "mppi"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_all_non_finite_costs_hold_still(name: str, bad: float) -> None:
    # 0 lies outside dim 0's box and dim 2 is frozen at 0.25: hold still = zero clipped in.
    planner = build(name, action_low=[0.1, -1.0, 0.25], action_high=[0.3, 1.0, 0.25])
    plan = planner.plan(lambda a: torch.full(a.shape[:2], bad), num_envs=2)
    expected = torch.tensor([0.1, 0.0, 0.25]).expand(2, planner.cfg.horizon, 3)
    assert torch.equal(plan, expected)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_one_broken_env_does_not_disturb_the_others(name: str) -> None:
    planner = build(name, horizon=1, num_samples=256, iterations=8)
    target = torch.tensor([[[0.4, -0.4, 0.2]], [[0.4, -0.4, 0.2]]])

    def cost(actions: torch.Tensor) -> torch.Tensor:
        costs = bowl(target)(actions)
        costs[0] = float("nan")
        costs[1, ::2] = float("inf")  # half of env 1's candidates broken too
        return costs

    plan = planner.plan(cost, num_envs=2)
    assert torch.equal(plan[0], torch.zeros(1, 3))
    assert torch.allclose(plan[1], target[1], atol=0.08)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_frozen_dims_are_never_sampled(name: str) -> None:
    planner = build(name, action_low=[-1.0, 0.0, -0.5], action_high=[1.0, 0.0, -0.5])
    seen: list[torch.Tensor] = []

    def cost(actions: torch.Tensor) -> torch.Tensor:
        seen.append(actions.clone())
        return actions[..., 0].sum(-1)

    plan = planner.plan(cost)
    for candidates in [*seen, plan]:
        assert torch.all(candidates[..., 1] == 0.0)
        assert torch.all(candidates[..., 2] == -0.5)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_warm_start_shifts_the_previous_plan(name: str) -> None:
    planner = build(name, horizon=3, iterations=1)
    first_candidates: list[torch.Tensor] = []

    def cost(actions: torch.Tensor) -> torch.Tensor:
        first_candidates.append(actions[:, 0].clone())  # candidate 0 is the incoming mean
        return bowl(torch.tensor([[0.5, 0.5, 0.5]] * 3))(actions)

    previous = planner.plan(cost)
    planner.shift(1)
    planner.plan(cost)
    expected = torch.cat([previous[:, 1:], torch.zeros(1, 1, 3)], dim=1)
    torch.testing.assert_close(first_candidates[1], expected)

    previous = planner.plan(cost)
    planner.shift(5)  # more than the horizon: nothing left but padding
    planner.plan(cost)
    torch.testing.assert_close(first_candidates[3], torch.zeros(1, 3, 3))

    planner.reset()
    planner.plan(cost)
    torch.testing.assert_close(first_candidates[4], torch.zeros(1, 3, 3))


def test_warm_start_resets_when_the_env_count_changes() -> None:
    planner = build("mppi", iterations=1)
    planner.plan(lambda a: -a.sum(dim=(-1, -2)), num_envs=1)
    plan = planner.plan(lambda a: -a.sum(dim=(-1, -2)), num_envs=3)
    assert plan.shape == (3, 2, 3)


def test_seeded_plans_are_reproducible_and_reset_reseeds() -> None:
    cost = bowl(torch.tensor([[0.1, 0.2, 0.3]]))
    a = build("cem", horizon=1, seed=3).plan(cost)
    planner = build("cem", horizon=1, seed=3)
    assert torch.equal(planner.plan(cost), a)
    planner.reset()
    assert torch.equal(planner.plan(cost), a)


def test_wrong_cost_shape_is_named() -> None:
    planner = build("cem")
    with pytest.raises(ValueError, match=r"expected \(E, S\)"):
        planner.plan(lambda a: a.sum(dim=(-1, -2)).flatten(), num_envs=2)
    with pytest.raises(ValueError, match="num_envs"):
        planner.plan(lambda a: a.sum(dim=(-1, -2)), num_envs=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_bounds_round_inwards_in_low_precision(dtype: torch.dtype) -> None:
    low, high = [-0.075, 0.0, -1.0, 0.3], [0.075, 0.0, 1.0, 0.3]
    lo, hi = bounds_in_dtype(low, high, dtype, torch.device("cpu"))
    assert torch.all(lo.double()[[0, 2]] >= torch.tensor(low, dtype=torch.float64)[[0, 2]])
    assert torch.all(hi.double()[[0, 2]] <= torch.tensor(high, dtype=torch.float64)[[0, 2]])
    assert lo[1] == hi[1] == 0 and lo[3] == hi[3]  # frozen dims stay one point


def test_plans_are_float32_inside_the_configured_bounds() -> None:
    low, high = [-0.075, 0.0, -1.0, 0.3], [0.075, 0.0, 1.0, 0.3]
    planner = build("cem", action_low=low, action_high=high)
    plan = planner.plan(lambda a: -a.abs().sum(dim=(-1, -2)))  # pushes to the corners
    assert plan.dtype == torch.float32
    as_double = plan.double()
    assert torch.all(as_double[..., :3] >= torch.tensor(low[:3], dtype=torch.float64))
    assert torch.all(as_double[..., :3] <= torch.tensor(high[:3], dtype=torch.float64))
    assert torch.all(plan[..., 1] == 0) and torch.all(plan[..., 3] == plan[0, 0, 3])


def test_compile_flag_wraps_the_cost_function_only_when_on(monkeypatch) -> None:
    wrapped: list[str] = []

    def fake_compile(fn, mode=None):
        wrapped.append(mode)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    cost = bowl(torch.tensor([[0.0, 0.0, 0.0]]))
    build("cem").plan(cost)
    assert wrapped == []
    planner = build("cem", compile=True)
    planner.plan(cost)
    planner.plan(cost)  # same function: compiled once
    assert wrapped == ["reduce-overhead"]


@st.composite
def adversarial_case(draw):
    dims = draw(st.integers(1, 5))
    low, high = [], []
    for _ in range(dims):
        a = draw(st.floats(-2.0, 2.0))
        width = draw(st.sampled_from([0.0, 0.0, 1e-4, 0.1, 1.5]))
        low.append(a)
        high.append(a + width)
    return {
        "name": draw(st.sampled_from(["cem", "mppi"])),
        "low": low,
        "high": high,
        "horizon": draw(st.integers(1, 3)),
        "num_envs": draw(st.integers(1, 3)),
        "bad_fraction": draw(st.floats(0.0, 1.0)),
        "huge": draw(st.sampled_from([1.0, 1e30, 3e38])),
        "seed": draw(st.integers(0, 2**16)),
        "select": draw(st.sampled_from(["mean", "best"])),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=adversarial_case())
def test_actions_stay_in_bounds_and_finite_under_adversarial_costs(case) -> None:
    planner = make_planner(
        {
            "name": case["name"],
            "horizon": case["horizon"],
            "num_samples": 16,
            "iterations": 3,
            "action_low": case["low"],
            "action_high": case["high"],
            "select": case["select"],
        }
    )
    gen = torch.Generator().manual_seed(case["seed"])
    specials = torch.tensor(
        [float("nan"), float("inf"), float("-inf"), case["huge"], -case["huge"]]
    )

    def cost(actions: torch.Tensor) -> torch.Tensor:
        shape = actions.shape[:2]
        costs = torch.randn(shape, generator=gen) * case["huge"]
        bad = torch.rand(shape, generator=gen) < case["bad_fraction"]
        pick = specials[torch.randint(len(specials), shape, generator=gen)]
        return torch.where(bad, pick, costs)

    low, high = torch.tensor(case["low"]), torch.tensor(case["high"])
    for _ in range(2):  # second call exercises the warm start
        plan = planner.plan(cost, num_envs=case["num_envs"])
        assert plan.shape == (case["num_envs"], case["horizon"], len(case["low"]))
        assert torch.isfinite(plan).all()
        assert torch.all(plan >= low) and torch.all(plan <= high), (plan, low, high)
        planner.shift(1)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_select_best_returns_the_lowest_cost_candidate_scored(name: str) -> None:
    """select=best (the default) returns the lowest-cost candidate any iteration scored."""
    scored: list[torch.Tensor] = []
    target = bowl(torch.tensor([[0.3, -0.2, 0.5], [0.1, 0.1, 0.1]]))

    def spy(actions: torch.Tensor) -> torch.Tensor:
        costs = target(actions)
        scored.append(costs.min())
        return costs

    best = build(name, horizon=2, num_samples=32, iterations=3).plan(spy)
    assert target(best.unsqueeze(1)).item() == pytest.approx(min(scored).item(), rel=1e-6)


@pytest.mark.parametrize("name", ["cem", "mppi"])
@pytest.mark.parametrize("select", ["mean", "best"])
def test_batched_plans_equal_plans_alone(name: str, select: str) -> None:
    targets = torch.tensor([[[0.2, -0.4, 0.9]], [[0.0, 0.0, 0.0]], [[0.0, 0.3, -0.3]]])
    opts = {"horizon": 1, "seed": 3, "select": select}
    batched = build(name, **opts).plan(bowl(targets), num_envs=3)
    for e in range(3):
        alone = build(name, **{**opts, "seed": 3 + e}).plan(bowl(targets[e]), num_envs=1)
        torch.testing.assert_close(batched[e], alone[0], rtol=0, atol=1e-6)


def test_bad_selection_settings_are_named() -> None:
    with pytest.raises(ValueError, match="select"):
        CEMConfig(select="median")


def test_protocol_is_satisfied() -> None:
    assert isinstance(build("cem"), Planner)
    assert isinstance(build("mppi"), Planner)
    assert math.isfinite(float(build("cem").plan(bowl(torch.zeros(1, 3))).sum()))


def test_a_cost_function_returning_numpy_is_accepted() -> None:
    from tests.test_agent import small_planner

    planner = small_planner()
    plan = planner.plan(lambda a: (a - 0.05).abs().sum((-2, -1)).numpy(), num_envs=1)
    assert plan[0, 0, 0] > 0.0
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        planner.plan(lambda a: [[0.0] * a.shape[1]], num_envs=1)

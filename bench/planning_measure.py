"""Planning benchmark measurements: latency per action, FLOP efficiency, ours vs pytorch_mppi.

The cores are shared with other jobs, so every figure keeps all repetitions: the median is what
a user sees under load, the minimum is the machine's capability.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from bench.planning_cost import BOUNDS, HIGH, LOW, Dynamics, make_cost_fn
from planners import CEMConfig, CEMPlanner, MPPIConfig, MPPIPlanner


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summary(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "all_s": times}


def matmul_peak(n: int) -> float:
    """Best-of-5 GFLOP/s of an n x n float32 matmul: the machine's attainable dense throughput."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    return 2 * n**3 / min(timed(lambda: a @ b, 5)) / 1e9


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def latency_grid(dynamics: Dynamics, samples: list[int], horizons: list[int], reps: int) -> list:
    """CEM at its default iterations over samples x horizon: one plan = one action (replan each)."""
    rows = []
    for horizon in horizons:
        for num_samples in samples:
            cfg = CEMConfig(num_samples=num_samples, horizon=horizon, **BOUNDS)
            planner, cost_fn = CEMPlanner(cfg), make_cost_fn(dynamics, 1)
            t = summary(timed(lambda: planner.plan(cost_fn), reps))  # noqa: B023
            work = num_samples * horizon * cfg.iterations
            rows.append(
                {"samples": num_samples, "horizon": horizon, "iterations": cfg.iterations, **t,
                 "transitions_per_s": work / t["median_s"],
                 "transitions_per_s_best": work / t["min_s"]}
            )  # fmt: skip
            print(f"  S={num_samples:4d} H={horizon}: {t['median_s'] * 1e3:6.0f} ms per action")
    return rows


def defaults(dynamics: Dynamics, reps: int, peak: float, sizes: dict) -> dict:
    """Default CEM and MPPI configs: latency per action, predictor share, planner overhead."""
    out = {}
    for cls, cfg in (
        (CEMPlanner, CEMConfig(**sizes, **BOUNDS)),
        (MPPIPlanner, MPPIConfig(**sizes, **BOUNDS)),
    ):
        planner, cost_fn = cls(cfg), make_cost_fn(dynamics, 1)
        candidates = torch.zeros(1, cfg.num_samples, cfg.horizon, 7)
        cost_fn(candidates)  # warm-up
        cpu0 = time.process_time()
        plan = summary(timed(lambda: planner.plan(cost_fn), reps))  # noqa: B023
        # CPU seconds per plan / threads: what the wall time would be with the cores to
        # ourselves (spin-waits included, so still pessimistic) - the cores are shared here.
        cpu_per_plan = (time.process_time() - cpu0) / reps / torch.get_num_threads()
        call = summary(timed(lambda: cost_fn(candidates), reps))  # noqa: B023
        # The planner alone: same loop with a free cost, i.e. sampling, top-k, refit, bounds.
        free = cls(cfg)
        overhead = timed(lambda: free.plan(lambda a: a.square().sum((-1, -2))), 4 * reps)  # noqa: B023
        flops = count_flops(lambda: cost_fn(candidates)) * cfg.iterations  # noqa: B023
        work = cfg.num_samples * cfg.horizon * cfg.iterations
        out[cfg.name] = {
            "config": {k: getattr(cfg, k) for k in ("num_samples", "horizon", "iterations")},
            "plan_ms_median": plan["median_s"] * 1e3,
            "plan_ms_min": plan["min_s"] * 1e3,
            "plan_ms_p95": sorted(plan["all_s"])[max(0, round(0.95 * reps) - 1)] * 1e3,
            "plan_ms_cpu_time_per_thread": cpu_per_plan * 1e3,
            "cost_fn_ms_per_call_median": call["median_s"] * 1e3,
            "planner_overhead_ms": statistics.median(overhead) * 1e3,
            "predictor_share": call["median_s"] * cfg.iterations / plan["median_s"],
            "transitions_per_s": work / plan["median_s"],
            "gflop_per_plan": flops / 1e9,
            "gflops_per_s": flops / plan["median_s"] / 1e9,
            "gflops_per_s_best": flops / plan["min_s"] / 1e9,
            "fraction_of_matmul_peak": flops / plan["median_s"] / 1e9 / peak,
            "fraction_of_matmul_peak_best": flops / plan["min_s"] / 1e9 / peak,
        }
        print(
            f"  {cfg.name}: {plan['median_s'] * 1e3:.0f} ms per action (best "
            f"{plan['min_s'] * 1e3:.0f}), {out[cfg.name]['gflops_per_s_best']:.1f} GFLOP/s best"
        )
    return out


def pytorch_mppi_controller(dynamics: Dynamics, cfg: MPPIConfig, z_flat: Tensor, goal: Tensor):
    """pytorch_mppi's MPPI on the same predictor; its state must be flat: [latent N*D, proprio 7].

    The flat state is Markov: each step sees only the current latent (no cache of earlier
    steps), which is slightly *less* attention work per transition than our rollout.
    """
    from pytorch_mppi import MPPI

    n, d = dynamics.tokens, dynamics.dim

    def step(state: Tensor, u: Tensor) -> Tensor:  # (K, N*D + 7), (K, 7) -> (K, N*D + 7)
        z = state[:, : n * d].reshape(-1, 1, n, d)  # (K, 1, N, D): each sample its own "env"
        s = state[:, n * d :].unsqueeze(1)  # (K, 1, 7)
        z_next = dynamics.rollout(z, s, u[:, None, None])  # (K, 1, 1, N, D)
        return torch.cat([z_next.flatten(1), state[:, n * d :] + u], dim=1)

    def running_cost(state: Tensor, u: Tensor) -> Tensor:  # (K,)
        return dynamics.energy(state[:, : n * d].reshape(-1, n, d), goal.reshape(n, d))

    std = torch.tensor([(h - lo) / 2 * cfg.init_std for lo, h in zip(LOW, HIGH, strict=True)])
    sigma = torch.diag(std.clamp_min(1e-6).square())  # frozen dims: tiny noise, then clamped
    ctrl = MPPI(
        step, running_cost, n * d + 7, sigma, num_samples=cfg.num_samples,
        horizon=cfg.horizon, lambda_=cfg.temperature, u_min=torch.tensor(LOW),
        u_max=torch.tensor(HIGH),
    )  # fmt: skip
    return ctrl, torch.cat([z_flat, torch.rand(7)])


def versus_pytorch_mppi(dynamics: Dynamics, cases: list[tuple[int, int]], reps: int) -> list:
    """Equal samples x horizon x iterations per env. E envs: one batched call per iteration for
    us, E controllers in a Python loop for pytorch_mppi (its MPPI class plans one env). Both run
    under no_grad; repetitions alternate ours / theirs so background load hits both alike."""
    rows = []
    for num_envs, num_samples in cases:
        cfg = MPPIConfig(num_samples=num_samples, **BOUNDS)
        ours, cost_fn = MPPIPlanner(cfg), make_cost_fn(dynamics, num_envs, sum_steps=True)
        gen = torch.Generator().manual_seed(1)
        n, d = dynamics.tokens, dynamics.dim
        goal = F.layer_norm(torch.randn(n, d, generator=gen), (d,)).flatten()  # (N*D,)
        controllers = [
            pytorch_mppi_controller(dynamics, cfg, torch.randn(n * d, generator=gen), goal)
            for _ in range(num_envs)
        ]

        @torch.no_grad()
        def theirs(controllers=controllers, iterations=cfg.iterations) -> None:
            for ctrl, state in controllers:
                for _ in range(iterations):  # command() = one importance-weighted update
                    ctrl.command(state, shift_nominal_trajectory=False)

        ours.plan(cost_fn, num_envs)  # warm-up both
        theirs()
        t_ours, t_theirs = [], []
        for _ in range(reps):
            t_ours += timed(lambda: ours.plan(cost_fn, num_envs), 1)  # noqa: B023
            t_theirs += timed(theirs, 1)
        work = num_envs * num_samples * cfg.horizon * cfg.iterations
        a, b = summary(t_ours), summary(t_theirs)
        rows.append(
            {
                "envs": num_envs, "samples": num_samples, "horizon": cfg.horizon,
                "iterations": cfg.iterations, "ours": a, "pytorch_mppi": b,
                "ours_transitions_per_s": work / a["median_s"],
                "pytorch_mppi_transitions_per_s": work / b["median_s"],
                "speedup_median": b["median_s"] / a["median_s"],
                "speedup_best": b["min_s"] / a["min_s"],
            }
        )  # fmt: skip
        print(
            f"  E={num_envs} S={num_samples}: ours {a['median_s']:.2f} s, pytorch_mppi "
            f"{b['median_s']:.2f} s (median), speedup {rows[-1]['speedup_median']:.2f}x"
        )
    return rows

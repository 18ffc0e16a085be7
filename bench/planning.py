"""Planning benchmark on CPU: latency per action, imagined transitions/s, FLOP efficiency, and
our MPPI against the `pytorch_mppi` package on the same predictor.

Run: `python -m bench planning` (2-7 min on 2 cores, depending on load); writes
`bench/results/planning.{json,md}`. `--quick` shrinks every size (smoke test).

What is planned on: the cost function the agent plans with (`agent.mpc.MPCAgent.cost_function`),
a batched `WorldModel.rollout` from one context frame, then `WorldModel.energy` (mean L1) to a
goal latent, on the default-size `WorldModelConfig`, randomly initialised (latency does not
depend on the weights); or nearly free dynamics, to see each planner's own overhead.

The cores are shared with other jobs, so every figure keeps all repetitions: the median is what
a user sees under load, the minimum is the machine's capability.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from bench import store
from envs.common.config import PandaEnvConfig
from planners import CEMConfig, CEMPlanner, MPPIConfig, MPPIPlanner
from planners.base import CostFn

# --- what is planned on: the project's predictor, or free dynamics --------------------------------

Rollout = Callable[[Tensor, Tensor, Tensor], Tensor]
LOW, HIGH = (list(b) for b in PandaEnvConfig().action_bounds())  # wm/Panda* action space
BOUNDS = {"action_low": LOW, "action_high": HIGH}
RESULTS = store.RESULTS


@dataclass
class Dynamics:
    """A batched rollout `(E, 1, N, D), (E, 1, 7), (E, S, H, 7) -> (E, S, H, N, D)` and its
    energy `(..., N, D), (..., N, D) -> (...)`."""

    rollout: Rollout
    energy: Callable[[Tensor, Tensor], Tensor]
    tokens: int  # N latent tokens per frame
    dim: int  # D
    description: str


def project_predictor() -> Dynamics:
    """The project's default-size `WorldModel` (random init), through its public verbs."""
    from world_model import WorldModelConfig, build_world_model

    cfg = WorldModelConfig()
    model = build_world_model(cfg).eval().requires_grad_(False)
    p = cfg.predictor
    desc = (
        f"world_model.WorldModel (default WorldModelConfig, random init): predictor {p.depth} "
        f"blocks, width {p.width}, {model.num_tokens}+2 tokens per step, D={model.latent_dim}"
    )
    return Dynamics(model.rollout, model.energy, model.num_tokens, model.latent_dim, desc)


def null_dynamics() -> Dynamics:
    """Nearly free dynamics on a 1 x 8 latent: what is left is each planner's own overhead
    (sampling, weighting, bounds, Python), not memory traffic of predictor-sized latents."""

    def rollout(z_ctx: Tensor, states_ctx: Tensor, actions: Tensor) -> Tensor:
        # (E, 1, 1, N, D) + (E, S, H, 1, 1) -> (E, S, H, N, D)
        return z_ctx[:, None, None, -1] + actions[..., :1, None]

    def energy(z: Tensor, goal: Tensor) -> Tensor:
        return (z - goal).abs().mean((-1, -2))

    return Dynamics(rollout, energy, 1, 8, "null dynamics (1 x 8 latent + action[0])")


def make_cost_fn(dynamics: Dynamics, num_envs: int, sum_steps: bool = False) -> CostFn:
    """Agent-style cost: rollout from one context frame, mean L1 to the goal latent `(E, S)`."""
    gen = torch.Generator().manual_seed(0)
    n, d = dynamics.tokens, dynamics.dim
    z_ctx = F.layer_norm(torch.randn(num_envs, 1, n, d, generator=gen), (d,))  # (E, 1, N, D)
    goal = F.layer_norm(torch.randn(num_envs, 1, 1, n, d, generator=gen), (d,))
    states = torch.rand(num_envs, 1, 7, generator=gen)

    def cost_fn(actions: Tensor) -> Tensor:  # (E, S, H, A) -> (E, S)
        z = dynamics.rollout(z_ctx, states, actions)  # (E, S, H, N, D)
        energy = dynamics.energy(z, goal)  # (E, S, H)
        return energy.sum(-1) if sum_steps else energy[..., -1]

    return cost_fn


# --- measurements ---------------------------------------------------------------------------------


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


# --- report: planning.md from the JSON result -----------------------------------------------------


def _defaults_rows(rows: dict, label: str) -> list[str]:
    out = []
    for name, d in rows.items():
        c = d["config"]
        out.append(
            f"| {label} | {name} | {c['num_samples']} x {c['horizon']} x {c['iterations']} | "
            f"{d['plan_ms_median']:.0f} ({d['plan_ms_min']:.0f}) | {d['plan_ms_p95']:.0f} | "
            f"{d['plan_ms_cpu_time_per_thread']:.0f} | "
            f"{d['cost_fn_ms_per_call_median']:.0f} | {100 * d['predictor_share']:.0f} % | "
            f"{d['planner_overhead_ms']:.1f} | {d['transitions_per_s']:.0f} | "
            f"{d['gflops_per_s']:.1f} ({d['gflops_per_s_best']:.1f}) | "
            f"{100 * d['fraction_of_matmul_peak']:.0f} % ({100 * d['fraction_of_matmul_peak_best']:.0f} %) |"
        )
    return out


def _targets(r: dict) -> list[str]:
    cem, versus = r["defaults"]["cem"], r["versus_pytorch_mppi"]
    return [
        f"- Planning <= 1 s per action (median, default CEM): {cem['plan_ms_median']:.0f} ms "
        f"(best {cem['plan_ms_min']:.0f} ms) -> "
        f"{'met' if cem['plan_ms_median'] <= 1000 else 'NOT met'}.",
        f"- Rollout >= 50 % of matmul throughput: {100 * cem['fraction_of_matmul_peak']:.0f} % "
        f"(best {100 * cem['fraction_of_matmul_peak_best']:.0f} %) of {r['matmul_gflops']:.0f} "
        f"GFLOP/s -> {'met' if cem['fraction_of_matmul_peak_best'] >= 0.5 else 'NOT met'}.",
        "- Our MPPI >= 2x pytorch_mppi transitions/s: "
        + ", ".join(f"E={v['envs']}: {v['speedup_median']:.2f}x" for v in versus)
        + ".",
    ]


def markdown(r: dict) -> str:
    lines = [
        "# Planning benchmark (CPU)",
        "",
        f"Command: `{r['command']}` ({r['wall_s']:.0f} s). Machine: {r['machine']}, "
        f"torch {r['torch']}, {r['threads']} threads, OMP_WAIT_POLICY={r['omp_wait_policy']}.",
        f"Predictor: {r['predictor']}. Cost: rollout from one context frame, mean L1 to a goal "
        "latent at the last step (the MPPI comparison sums over steps).",
        f"Load average at start {r['loadavg_start']}, end {r['loadavg_end']}: the cores are "
        "shared with other jobs, so figures are `median (best)` over repetitions.",
        f"Large matmul ({r['matmul_n']}^2 float32, best of 5): **{r['matmul_gflops']:.0f} GFLOP/s**.",
        "",
        "## Targets (issue 4)",
        "",
        *_targets(r),
        "",
        "## Defaults (one plan per action)",
        "",
        "| predictor | planner | S x H x iters | ms/action | p95 | CPU ms / threads | cost_fn ms/call "
        "| predictor share | planner overhead ms | transitions/s | GFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *_defaults_rows(r["defaults"], "default"),
    ]
    lines += ["", "## CEM latency per action vs samples x horizon (default iterations)", ""]
    lines += ["| S \\ H | " + " | ".join(str(h) for h in r["horizons"]) + " |"]
    lines += ["|---" * (len(r["horizons"]) + 1) + "|"]
    for s in r["samples"]:
        cells = [
            f"{g['median_s'] * 1e3:.0f} ms ({g['min_s'] * 1e3:.0f}); {g['transitions_per_s']:.0f} tr/s"
            for g in r["grid"]
            if g["samples"] == s
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Our MPPI vs pytorch_mppi (equal S x H x iterations per env, both no_grad)",
        "",
        "E envs: one batched cost call per iteration for ours, E `pytorch_mppi.MPPI` controllers "
        "in a loop for theirs (state = flattened latent + proprio; its flat state is Markov, so "
        "each step attends to the current latent only: no more work than ours).",
        "",
        "| dynamics | envs | S x H x iters | ours s | pytorch_mppi s | ours tr/s "
        "| pytorch_mppi tr/s | speedup median (best) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (("versus_pytorch_mppi", "predictor"), ("versus_null_dynamics", "null")):
        for v in r.get(key, []):
            lines.append(
                f"| {label} | {v['envs']} | {v['samples']} x {v['horizon']} x {v['iterations']} | "
                f"{v['ours']['median_s']:.3f} | {v['pytorch_mppi']['median_s']:.3f} | "
                f"{v['ours_transitions_per_s']:.0f} | {v['pytorch_mppi_transitions_per_s']:.0f} | "
                f"{v['speedup_median']:.2f}x ({v['speedup_best']:.2f}x) |"
            )
    return "\n".join(lines) + "\n"


# --- the run --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t_start, quick = time.perf_counter(), args.quick
    # quick: smoke-test sizes, *not* the defaults
    samples, horizons = ([16], [1, 2]) if quick else ([64, 128, 256], [1, 2, 3])
    reps = 1 if quick else 3
    sizes = {"num_samples": 16, "iterations": 2} if quick else {}
    versus_cases = [(1, 8), (2, 4)] if quick else [(1, 128), (4, 128), (16, 16)]

    dynamics = project_predictor()
    result: dict = {
        "command": store.command()
        if argv is None
        else " ".join(["python -m bench planning", *argv]),
        "provenance": store.provenance(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores visible",
        "threads": args.threads,
        "omp_wait_policy": (
            os.environ["OMP_WAIT_POLICY"] if configs.runtime.OMP_POLICY_APPLIES else "unknown"
        ),
        "torch": torch.__version__,
        "predictor": dynamics.description,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "matmul_n": 512 if quick else 2048,
        "samples": samples,
        "horizons": horizons,
    }
    result["matmul_gflops"] = matmul_peak(result["matmul_n"])
    print(f"{dynamics.description}\nmatmul: {result['matmul_gflops']:.0f} GFLOP/s\ndefaults:")
    reps_defaults = 1 if quick else reps + 2
    result["defaults"] = defaults(dynamics, reps_defaults, result["matmul_gflops"], sizes)
    print("latency grid (CEM):")
    result["grid"] = latency_grid(dynamics, samples, horizons, max(1, reps - 1))
    print("versus pytorch_mppi:")
    result["versus_pytorch_mppi"] = versus_pytorch_mppi(dynamics, versus_cases, reps)
    print("versus pytorch_mppi, null dynamics (planner overhead only):")
    null = null_dynamics()
    result["versus_null_dynamics"] = versus_pytorch_mppi(null, versus_cases, 2 * reps + 1)
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = time.perf_counter() - t_start
    store.save("planning", result, markdown, args.out)
    print(f"wrote {args.out / 'planning.json'} and planning.md")
    return result

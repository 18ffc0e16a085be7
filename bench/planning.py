"""Planning benchmark on CPU: latency per action, imagined transitions/s, FLOP efficiency, and
our MPPI against the `pytorch_mppi` package on the same predictor.

Run: `python -m bench planning` (2-7 min on 2 cores, depending on load); writes
`bench/results/planning.{json,md}`. `--quick` shrinks every size (smoke test).

The cost function is the one the agent plans with, on the project's own default-size predictor
(bench/planning_cost.py); measurements live in bench/planning_measure.py, the markdown in
bench/planning_report.py.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import os
import platform
import time
from pathlib import Path

import torch

from bench import store
from bench.planning_cost import null_dynamics, project_predictor
from bench.planning_measure import defaults, latency_grid, matmul_peak, versus_pytorch_mppi
from bench.planning_report import markdown

RESULTS = store.RESULTS


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


if __name__ == "__main__":
    main()

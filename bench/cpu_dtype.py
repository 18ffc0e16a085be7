"""bf16 autocast against float32 on this CPU, for the planner's cost and a lewm training step.

    python -m bench cpu_dtype --checkpoint checkpoints/cube_lewm --data data/ogbench_cube_train.h5

Why: CPUs with AVX-512 BF16 (or AMX) run bf16 matmuls natively, so autocast may pay where it
used to cost. Each figure is the median of interleaved repetitions (fp32, bf16, bf16, fp32, ...)
in one process, so a load change on the shared cores hits both alike. The planner figure is one
cost call at the anchors' budget (300 candidates x 5 blocks from a 3-frame context); the
ranking figure is the Spearman correlation of the two dtypes' energies over those candidates
(the plan diagnosis reads rankings, so a value near 1 means it would not change).
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from scipy.stats import spearmanr

from bench import store
from world_model.checkpoint import load_world_model


def autocast(bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def interleaved(run: Callable[[bool], Any], reps: int) -> dict[str, float]:
    """Median seconds of `run(bf16)` for each dtype, alternating the order every repetition."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for bf16 in (False, True):  # warm-up (oneDNN picks kernels on first use)
        run(bf16)
    for rep in range(reps):
        for bf16 in (False, True) if rep % 2 == 0 else (True, False):
            start = time.perf_counter()
            run(bf16)
            times[bf16].append(time.perf_counter() - start)
    return {("bf16" if k else "fp32"): statistics.median(v) for k, v in times.items()}


@torch.no_grad()
def planner_cost(checkpoint: str, reps: int, samples: int = 300, blocks: int = 5) -> dict:
    wm = load_world_model(checkpoint).eval()
    g = torch.Generator().manual_seed(0)
    n, d, k, hist = wm.num_tokens, wm.latent_dim, wm.action_block, wm.history
    z = torch.randn(1, hist, n, d, generator=g)  # [1, Tc, N, D]
    states = torch.zeros(1, hist, 7)
    actions = torch.rand(1, samples, blocks, k * 7, generator=g) * 2 - 1  # [1, S, H, k * 7]
    past = torch.zeros(1, hist - 1, k * 7) if hist > 1 else None
    goal = torch.randn(1, 1, n, d, generator=g)

    def run(bf16: bool) -> torch.Tensor:
        with autocast(bf16):
            return wm.energy(wm.rollout(z, states, actions, past)[:, :, -1].float(), goal)

    seconds = interleaved(run, reps)
    rho = spearmanr(run(False).flatten().numpy(), run(True).flatten().numpy()).statistic
    return {
        "what": f"cost of {samples} candidates x {blocks} blocks of {k}",
        "fp32_ms": round(1e3 * seconds["fp32"], 1),
        "bf16_ms": round(1e3 * seconds["bf16"], 1),
        "speedup": round(seconds["fp32"] / seconds["bf16"], 2),
        "energy_spearman": round(float(rho), 4),
    }


def train_step(checkpoint: str, data: str, reps: int) -> dict:
    from hydra import compose, initialize_config_module

    from world_model.training import config as train_config
    from world_model.training.apps import typed_config
    from world_model.training.lewm_trainer import LeWMTrainer

    overrides = [
        f"data=[{data}]",
        "world_model.predictor.use_state=false",
        f"world_model.action_block={load_world_model(checkpoint).action_block}",
        "sigreg_proj=128",
        "sigreg_within=1.0",
        "out_dir=/tmp/bench_cpu_dtype",
        "resume=false",
    ]
    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose("train_lewm", overrides=overrides)
    trainer = LeWMTrainer(typed_config(cfg, train_config.TrainConfig, "train"))
    batch = trainer.local_batch(0)

    def run(bf16: bool) -> None:
        trainer.autocast = lambda: autocast(bf16)
        trainer.train_step(*batch)

    seconds = interleaved(run, reps)
    return {
        "what": f"lewm train step (the cube recipe), batch {trainer.cfg.batch_size}",
        "fp32_ms": round(1e3 * seconds["fp32"], 1),
        "bf16_ms": round(1e3 * seconds["bf16"], 1),
        "speedup": round(seconds["fp32"] / seconds["bf16"], 2),
    }


def markdown(r: dict) -> str:
    lines = [
        "# bf16 autocast vs float32 on this CPU",
        "",
        f"`{r['command']}` at {r['provenance'].get('commit', '?')}; {r['machine']}; load "
        f"{r['loadavg_start']} at the start; native bf16: {r['native_bf16']}.",
        "",
        "| what | fp32 ms | bf16 ms | speed-up | energy ranking (Spearman) |",
        "|---|---|---|---|---|",
    ]
    for row in (r["planner"], r["train"]):
        rho = row.get("energy_spearman", "-")
        lines.append(
            f"| {row['what']} | {row['fp32_ms']} | {row['bf16_ms']} | {row['speedup']}x | {rho} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/cube_lewm")
    parser.add_argument("--data", required=True, help="the checkpoint's training data (.h5)")
    parser.add_argument("--reps", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = {
        "command": store.command(),
        "provenance": store.provenance(checkpoint=args.checkpoint),
        "machine": f"{os.cpu_count()} cores visible, torch {torch.__version__}, 1 thread",
        "native_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "planner": planner_cost(args.checkpoint, args.reps),
        "train": train_step(args.checkpoint, args.data, max(2, args.reps // 2)),
    }
    store.save("cpu_dtype", result, markdown)
    print(markdown(result))
    return result

"""World-model benchmark: training throughput, rollout cost vs horizon (KV cache on / off),
held-out latent prediction error against the copy-last-latent baseline, per task.

    python -m bench world_model --data runs/data/reach.h5 runs/data/push.h5 \
        --model runs/wm/world_model

Writes bench/results/world_model.json and .md. The held-out split is the one the model was
trained with (seed and val_fraction from its config.json), so the error rows are on episodes
the predictor never saw.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from bench import store
from world_model import load_world_model
from world_model.training.config import TrainConfig
from world_model.training.data import Clips, split_episodes
from world_model.training.latents import cached_latents
from world_model.training.losses import rollout_errors

RESULTS = store.RESULTS


def timeit(fn, reps: int) -> float:
    """Best-of-`reps` seconds (the CPU is shared; the minimum is the least disturbed run)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def rollout_timing(model, samples: int, horizons: list[int], reps: int) -> list[dict]:
    n, d = model.num_tokens, model.latent_dim
    z = torch.randn(1, 1, n, d)
    s = torch.zeros(1, 1, 7)
    rows = []
    for h in horizons:
        a = torch.randn(1, samples, h, 7) * 0.05
        cached = timeit(lambda a=a: model.rollout(z, s, a, use_cache=True), reps)
        full = timeit(lambda a=a: model.rollout(z, s, a, use_cache=False), reps)
        rows.append({"horizon": h, "samples": samples, "cached_s": cached, "recompute_s": full,
                     "speedup": full / cached})  # fmt: skip
    return rows


def train_throughput(model_dir: Path, data: list[str], cache_dir: str, steps: int) -> dict:
    """Clips/s of `Trainer.train_step` at the default batch on the cached latents."""
    from world_model.training.trainer import Trainer

    extra = json.loads((model_dir / "config.json").read_text())
    cfg = TrainConfig(
        data=data,
        world_model=extra["world_model"],
        out_dir="/tmp/bench_wm_throughput",
        cache_dir=cache_dir,
        steps=steps + 2,
        resume=False,
    )
    trainer = Trainer(cfg)
    trainer.train_step(*trainer.local_batch(0))  # warm-up
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        trainer.train_step(*trainer.local_batch(step))
    dt = time.perf_counter() - t0
    return {"batch_size": cfg.batch_size, "clip_len": cfg.clip_len, "steps": steps,
            "clips_per_s": steps * cfg.batch_size / dt, "s_per_step": dt / steps}  # fmt: skip


@torch.no_grad()
def heldout_errors(
    model, model_dir: Path, data: list[str], cache_dir: str, horizon: int
) -> list[dict]:
    extra = json.loads((model_dir / "config.json").read_text()).get("extra", {})
    tcfg = extra.get("train_config", {})
    seed, val_fraction = tcfg.get("seed", 0), tcfg.get("val_fraction", 0.1)
    latents = cached_latents(data, model.encoder, cache_dir)
    train_eps, val_eps = split_episodes(len(latents.lengths), val_fraction, seed)
    if not tcfg:
        val_eps = torch.arange(len(latents.lengths))  # unknown split: report on everything
    rows = []
    for task in sorted(set(latents.tasks)):
        eps = torch.tensor(
            [e for e in val_eps.tolist() if latents.tasks[e] == task], dtype=torch.int64
        )
        clips = Clips.build(latents, eps, horizon + 1)
        if len(clips) == 0:
            continue
        z, actions, states = clips.batch(torch.arange(len(clips)))
        model_err, copy_err = rollout_errors(model.predictor, z, actions, states, horizon)
        rows.append({"task": task, "episodes": len(eps), "clips": len(clips),
                     "model_l1": model_err.tolist(), "copy_last_l1": copy_err.tolist(),
                     "ratio": (model_err / copy_err).tolist()})  # fmt: skip
    return rows


@torch.no_grad()
def official_predictor_timing(batch: int, reps: int, preset: str = "vjepa2-ac-vitg") -> dict:
    """Forward time of the official-size predictor on CUDA in bf16: one planning step
    (1 context frame of 256 ViT-g tokens + action + state, one rollout step) for `batch`
    candidates (paper: 800 CEM samples). Random weights: the cost, not the output, matters."""
    from world_model import build_predictor

    device = torch.device("cuda")
    predictor = build_predictor(preset).to(device, torch.bfloat16).eval()
    n, d = 256, predictor.cfg.embed_dim
    z = torch.randn(1, 1, n, d, device=device, dtype=torch.bfloat16)
    s = torch.zeros(1, 1, 7, device=device, dtype=torch.bfloat16)
    a = torch.zeros(1, batch, 1, 7, device=device, dtype=torch.bfloat16)

    def run() -> None:
        predictor.rollout(z, s, a)
        torch.cuda.synchronize()

    return {"preset": preset, "batch": batch, "dtype": "bfloat16", "device": torch.cuda.get_device_name(),
            "forward_s": timeit(run, reps)}  # fmt: skip


def markdown(result: dict) -> str:
    lines = ["# World-model benchmark", "", f"Command: `{result['command']}`", "",
             f"Model: `{result['model']}` ({result['predictor_params'] / 1e6:.2f} M predictor params,"
             f" N = {result['tokens']} tokens x D = {result['dim']}); CPU threads: {result['threads']}.", ""]  # fmt: skip
    if "train" in result:
        t = result["train"]
        lines += ["## Training throughput", "",
                  f"{t['clips_per_s']:.1f} clips/s (batch {t['batch_size']}, clip {t['clip_len']} frames,"
                  f" {t['s_per_step'] * 1000:.0f} ms/step).", ""]  # fmt: skip
    lines += ["## Rollout time vs horizon", "", "| horizon | samples | cached (ms) | recompute (ms) | speedup |",
              "|---|---|---|---|---|"]  # fmt: skip
    for r in result["rollout"]:
        lines.append(f"| {r['horizon']} | {r['samples']} | {r['cached_s'] * 1e3:.1f} | "
                     f"{r['recompute_s'] * 1e3:.1f} | {r['speedup']:.2f}x |")  # fmt: skip
    lines += ["", "## Held-out latent L1 vs copy-last-latent baseline", "",
              "| task | episodes | step | model L1 | copy-last L1 | ratio |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in result["heldout"]:
        for h, (m, c, q) in enumerate(
            zip(r["model_l1"], r["copy_last_l1"], r["ratio"], strict=True), 1
        ):
            lines.append(f"| {r['task']} | {r['episodes']} | {h} | {m:.4f} | {c:.4f} | {q:.2f} |")
    if "official_gpu" in result:
        g = result["official_gpu"]
        lines += ["", "## Official-size predictor on GPU", "",
                  f"{g['preset']} forward at batch {g['batch']} in {g['dtype']} on {g['device']}:"
                  f" {g['forward_s'] * 1e3:.1f} ms."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="HDF5 datasets (held-out split)")
    parser.add_argument("--model", default="runs/wm/world_model", help="trained checkpoint dir")
    parser.add_argument("--cache-dir", default="runs/latent_cache")
    parser.add_argument("--samples", type=int, default=256, help="candidates per rollout call")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--error-horizon", type=int, default=3, help="open-loop steps scored")
    parser.add_argument("--train-steps", type=int, default=20, help="0 skips the throughput row")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--official-gpu-batch", type=int, default=800, help="0 skips; needs CUDA")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_dir = Path(args.model)
    model = load_world_model(model_dir)
    result = {
        "command": "python -m bench world_model "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
        ),  # fmt: skip
        "model": str(model_dir),
        "predictor_params": sum(p.numel() for p in model.predictor.parameters()),
        "tokens": model.num_tokens,
        "dim": model.latent_dim,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "provenance": store.provenance(dataset=args.data[0], checkpoint=args.model),
    }
    result["heldout"] = heldout_errors(
        model, model_dir, args.data, args.cache_dir, args.error_horizon
    )
    result["rollout"] = rollout_timing(model, args.samples, args.horizons, args.reps)
    if args.train_steps:
        result["train"] = train_throughput(model_dir, args.data, args.cache_dir, args.train_steps)
    if args.official_gpu_batch and torch.cuda.is_available():
        result["official_gpu"] = official_predictor_timing(args.official_gpu_batch, args.reps)
    store.save("world_model", result, markdown, Path(args.out))
    print(markdown(result))

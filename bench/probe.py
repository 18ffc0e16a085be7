"""Probing benchmark: does a world model's latent carry what the task's success depends on?

Ranks encoders the way LeWM says to (never by prediction loss: a collapsed latent predicts
itself perfectly): ridge (linear) probes from frozen per-frame latents to the positions the
env's success test compares (`task`: the Panda or OGBench cube, reacher's fingertip), plus on
Panda envs the cube position, the end-effector position and the gripper opening; fitted on
half of the probe episodes and scored (R^2) on the other half.
Also the effective rank of the latent covariance (collapse check) and the open-loop latent
error at the planning horizon against copy-last.

    python -m bench probe --data data/probe_push.h5 data/probe_pick.h5 \
        --model random-init=random-init lewm=checkpoints/push_lewm

`random-init` builds the default frozen tiny V-JEPA encoder (configs/world_model/tiny.yaml) with
its seeded random init; `encoder:runs/pretrain/encoder` the same encoder with `wm-pretrain`'s
weights (V-JEPA objective, with or without SIGReg). Use probe datasets collected with a seed
none of the models trained on (scripts/make_checkpoints.sh does). Writes bench/results/probe.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from bench import store
from envs.data import open_dataset
from world_model import WorldModelConfig, build_world_model, load_world_model
from world_model.training.data import Clips, split_episodes
from world_model.training.lewm import load_frames, open_loop_errors
from world_model.training.sigreg import effective_rank

RESULTS = store.RESULTS
COLLAPSE_RANK = 10.0  # effective rank below this is reported as collapsed
RIDGE_ALPHAS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def probe_targets(path: str) -> dict[str, np.ndarray]:
    """Per-frame truth from the recorded simulator states. Every env: `task`, the positions its
    success test compares (`task_positions`: OGBench's cube, reacher's fingertip). Panda envs
    add cube xyz, ee xyz (m), gripper [0, 1]. The raw proprio vector is not probed: summed
    R^2 over it is ruled by velocities and wrapped angles a single frame cannot show."""
    import envs  # noqa: F401  (registers the wm/* ids)
    from envs.common.sim_state import set_sim_state
    from envs.panda.env import PandaEnv

    reader = open_dataset(path)
    env = gym.make(reader.attrs["env_id"])
    env.reset(seed=0)
    base = env.unwrapped
    panda = isinstance(base, PandaEnv)  # its state layout: ee xyz first, gripper last
    out: dict[str, list] = {"task": []}
    if panda:
        out |= {"cube": [], "ee": [], "gripper": []}
    for ep in reader:
        if ep.sim_states is None:
            raise ValueError(f"{path}: episodes lack simulator states; re-collect with wm-collect")
        for s in ep.sim_states:
            set_sim_state(env, s)
            out["task"].append(np.asarray(base.task_positions(), dtype=np.float64).ravel())
            if panda and hasattr(base, "cube_pos"):
                out["cube"].append(base.cube_pos())
        if panda:
            out["ee"].append(ep.states[:, :3])
            out["gripper"].append(ep.states[:, 6:7])
    reader.close()
    env.close()
    stack = {"task": np.stack, "cube": np.stack}
    return {k: stack.get(k, np.concatenate)(v) for k, v in out.items() if len(v)}


def ridge_r2(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> float:
    """R^2 (summed over components) on `test` frames of a ridge fit on `train` frames; alpha
    picked on a held-out fifth of the training frames' episodes (here: the last fifth)."""
    x, y = x.double(), y.double()
    mu, sd = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
    x = (x - mu) / sd

    def fit(rows: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        xm, ym = x[rows].mean(0), y[rows].mean(0)
        xc, yc = x[rows] - xm, y[rows] - ym
        gram = xc.T @ xc + alpha * torch.eye(x.shape[1], dtype=x.dtype)
        w = torch.linalg.solve(gram, xc.T @ yc)
        return w, ym - xm @ w

    def r2(rows: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
        err = (x[rows] @ w + b - y[rows]).square().sum()
        return float(1 - err / (y[rows] - y[rows].mean(0)).square().sum().clamp_min(1e-12))

    cut = int(len(train) * 0.8)
    inner, held = train[:cut], train[cut:]
    best = max(RIDGE_ALPHAS, key=lambda a: r2(held, *fit(inner, a)))
    return r2(test, *fit(train, best))


@torch.no_grad()
def encode_all(model, frames: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """uint8 `(F, 3, H, W)` -> per-frame features `(F, N * D)`."""
    out = [model.encode(frames[i : i + batch, None])[:, 0].flatten(1) for i in
           range(0, len(frames), batch)]  # fmt: skip
    return torch.cat(out)


@torch.no_grad()
def horizon_errors(model, data, z: torch.Tensor, episodes: torch.Tensor, horizon: int) -> dict:
    """Open-loop MSE and L1 per predictor step vs copy-last on held-out clips (history =
    the model's, k = the model's action block)."""
    hist = model.history
    latent = type(data)(z.view(len(z), model.num_tokens, -1), data.states, data.actions,
                        data.starts, data.lengths, data.tasks)  # fmt: skip
    clips = Clips.build(latent, episodes, hist + horizon, model.action_block)
    zb, actions, states = clips.batch(torch.arange(len(clips)))
    mse, copy_mse = open_loop_errors(model.predictor, zb, actions, states, hist, horizon)
    return {"clips": len(clips), "history": hist, "action_block": model.action_block,
            "mse": mse.tolist(), "copy_mse": copy_mse.tolist(),
            "ratio_at_horizon": float(mse[-1] / copy_mse[-1])}  # fmt: skip


@torch.no_grad()
def plan_cost(model, samples: int = 300, horizon: int = 5, reps: int = 3) -> float:
    """Seconds for one CEM-iteration rollout batch (300 samples x 5 blocks, 3 context frames)."""
    hist, kA = model.history, 7 * model.action_block
    z = torch.randn(1, hist, model.num_tokens, model.latent_dim)
    s, past = torch.zeros(1, hist, 7), (torch.zeros(1, hist - 1, kA) if hist > 1 else None)
    a = torch.randn(1, samples, horizon, kA) * 0.05
    best = float("inf")
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        model.rollout(z, s, a, past)
        best = min(best, time.perf_counter() - t0)
    return best


def load(spec: str):
    """`random-init`, `encoder:<wm-pretrain output>` (the tiny encoder with those weights, no
    trained predictor) or a world-model checkpoint; returns (model, has a trained predictor)."""
    if spec == "random-init":
        return build_world_model(WorldModelConfig()).eval().requires_grad_(False), False
    if spec.startswith("encoder:"):
        source = spec.removeprefix("encoder:")
        hf = json.loads((Path(source) / "config.json").read_text())  # its crop and patch size
        cfg = WorldModelConfig()
        enc = replace(
            cfg.encoder, source=source, crop_size=hf["crop_size"], patch_size=hf["patch_size"]
        )
        pred = replace(cfg.predictor, embed_dim=hf["hidden_size"])  # untrained, sized to fit
        model = build_world_model(replace(cfg, encoder=enc, predictor=pred))
        return model.eval().requires_grad_(False), False
    return load_world_model(spec), True


def run(data: list[str], models: dict[str, str], horizon: int, seed: int) -> dict:
    torch.manual_seed(seed)
    sets = {Path(p).stem: (load_frames([p]), probe_targets(p)) for p in data}
    out: dict = {"data": data, "horizon": horizon, "collapse_rank_threshold": COLLAPSE_RANK,
                 "host": platform.node(), "models": {}}  # fmt: skip
    for name, spec in models.items():
        model, has_predictor = load(spec)
        row = {"spec": spec, "layout": model.latent_layout, "tokens": model.num_tokens,
               "dim": model.latent_dim, "plan_rollout_s": plan_cost(model), "sets": {}}  # fmt: skip
        for set_name, (frames, truth) in sets.items():
            t0 = time.perf_counter()
            z = encode_all(model, frames.latents)
            enc_ms = 1e3 * (time.perf_counter() - t0) / len(z)
            train_eps, test_eps = split_episodes(len(frames.lengths), 0.5, seed)
            rows = [torch.cat([torch.arange(int(frames.starts[e]),
                    int(frames.starts[e] + frames.lengths[e])) for e in eps.tolist()])
                    for eps in (train_eps, test_eps)]  # fmt: skip
            res = {"encode_ms_per_frame": enc_ms, "effective_rank": effective_rank(z),
                   "r2": {q: ridge_r2(z, torch.as_tensor(v), *rows)
                          for q, v in truth.items()}}  # fmt: skip
            if has_predictor:
                res["open_loop"] = horizon_errors(model, frames, z, test_eps, horizon)
            row["sets"][set_name] = res
            print(name, set_name, json.dumps(res["r2"]), f"rank {res['effective_rank']:.1f}",
                  res.get("open_loop", {}).get("ratio_at_horizon", ""), flush=True)  # fmt: skip
        out["models"][name] = row
    return out


def markdown(res: dict) -> str:
    lines = [
        "# Probes: what the latents carry",
        "",
        f"Data: {', '.join(res['data'])} (probe episodes: fit on half, R^2 on the other half).",
        f"Open-loop error: MSE after {res['horizon']} predictor steps (blocks) / copy-last MSE.",
        f"Collapse flagged when the effective rank < {res['collapse_rank_threshold']:.0f}.",
        "",
    ]
    qs = list(dict.fromkeys(q for row in res["models"].values() for st in row["sets"].values()
                            for q in st["r2"]))  # fmt: skip
    lines += [
        "| model | layout | set | "
        + " | ".join(f"R^2 {q}" for q in qs)
        + " | eff. rank | err/copy @H | encode ms/frame | rollout 300x5 s |",
        "|---|---|---|" + "---|" * len(qs) + "---|---|---|---|",
    ]
    for name, row in res["models"].items():
        for set_name, s in row["sets"].items():
            r2, ol = s["r2"], s.get("open_loop")
            ratio = f"{ol['ratio_at_horizon']:.2f}" if ol else "-"
            cells = " | ".join(f"{r2[q]:.3f}" if q in r2 else "-" for q in qs)
            lines.append(
                f"| {name} | {row['layout']} ({row['tokens']}x{row['dim']}) | {set_name} | "
                f"{cells} | {s['effective_rank']:.1f} | {ratio} | "
                f"{s['encode_ms_per_frame']:.2f} | {row['plan_rollout_s']:.3f} |"
            )
    lines += store.archive_notes(res["models"].values())
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument(
        "--model",
        nargs="+",
        required=True,
        help="name=checkpoint_dir | random-init | encoder:<wm-pretrain out_dir>/encoder",
    )
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "probe"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) for m in args.model)
    res = run(args.data, models, args.horizon, args.seed)
    provenance = store.provenance() | {"datasets": [store.dataset_recipe(p) for p in args.data]}
    for name, spec in models.items():
        ckpt = spec.removeprefix("encoder:") if spec != "random-init" else None
        res["models"][name]["provenance"] = provenance | {
            "checkpoint": store.checkpoint_recipe(ckpt)
        }
    out = Path(args.out)

    def change(data: dict) -> None:
        # keep rows of models not re-run, if they were probed on the same data
        same = data.get("data") == res["data"] and data.get("horizon") == res["horizon"]
        models = {**data.get("models", {}), **res["models"]} if same else res["models"]
        data.clear()
        data.update(res, models=models)

    print(markdown(store.update(out.name, change, markdown, out.parent)))

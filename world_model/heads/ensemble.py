"""An ensemble of predictors on the checkpoint's frozen encoder, whose disagreement the planner
can pay for (PETS, MOPO, MOReL: penalise what the model does not know).

Each member is a copy of the checkpoint's predictor, fine-tuned for a few hundred steps with
its own seed on a bootstrap resample of the training episodes (the lewm objective on the
frozen encoder's latents, `LeWMLoss(cached=True)`). Where the data covers an action's outcome
the members agree; where CEM exploits the model they tend not to. The agent adds
`agent.ensemble_weight` x the members' spread at the plan's end to the energy
(agent/mpc.py). The members live in the checkpoint directory as `ensemble.safetensors`,
declared in `config.json` under `extra.ensemble`, like the action head.

    python -m world_model.heads.ensemble checkpoint=runs/cube_ensemble \
        data=[data/ogbench_cube_train.h5] members=3 steps=300
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from world_model.heads.extras import OfflineRecipe, fit, load_extra, save_extra, split_episodes
from world_model.training.data import Clips
from world_model.training.latents import LatentSet
from world_model.training.lewm import LeWMLoss, load_frames, open_loop_errors
from world_model.training.lewm_trainer import encode_frames

KEY = "ensemble"


@dataclass(frozen=True)
class EnsembleConfig(OfflineRecipe):
    """Members and their fine-tuning, on the shared offline recipe."""

    members: int = 3
    """Fine-tuned predictor copies (K)."""
    steps: int = 300
    """Optimiser steps per member."""
    batch_size: int = 32
    """Clips per step (wm-train's lewm batch)."""
    lr: float = 3e-4
    """Peak learning rate, below the 1e-3 the checkpoint trained at: members stay near it."""
    clip_len: int = 8
    """Frames per clip, one block apart: the lewm recipe's history 3 + 5 open-loop blocks."""
    auto_steps: int = 5
    """Open-loop blocks in the loss (the planner's horizon)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.members < 2:
            raise ValueError(f"EnsembleConfig.members={self.members}: a spread needs >= 2")


class PredictorEnsemble(nn.Module):
    """K predictors sharing the world model's encoder; `spread` is their disagreement."""

    def __init__(self, predictor: nn.Module, members: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(copy.deepcopy(predictor) for _ in range(members))

    @torch.no_grad()
    def spread(self, z_ctx: Tensor, s_ctx: Tensor, actions: Tensor, past: Tensor | None) -> Tensor:
        """Mean over tokens and channels of the members' per-channel std of the final imagined
        latent: `(E, Tc, N, D)`, `(E, Tc, 7)`, `(E, S, H, k * 7)`, past -> `(E, S)`."""
        finals = [m.rollout(z_ctx, s_ctx, actions, past)[:, :, -1] for m in self.members]
        finals = torch.stack(finals).float()  # [K, E, S, N, D]
        return finals.std(dim=0).mean(dim=(-2, -1))  # [E, S]


def train_ensemble(
    world_model: nn.Module, data: LatentSet, cfg: EnsembleConfig
) -> tuple[PredictorEnsemble, dict[str, float]]:
    """Fine-tune `cfg.members` copies of the predictor on `data` (encoded latents); returns the
    ensemble and the held-out open-loop error per block of the main model and each member."""
    gen = torch.Generator().manual_seed(cfg.seed)
    train_eps, val_eps = split_episodes(list(range(len(data.lengths))), cfg.val_fraction, gen)
    k, history = world_model.action_block, world_model.history
    val = Clips.build(data, torch.tensor(val_eps), cfg.clip_len, k)
    val_batch = val.batch(torch.arange(min(len(val), 512)))
    ensemble = PredictorEnsemble(world_model.predictor, cfg.members)

    def val_error(predictor: nn.Module) -> float:
        err, _ = open_loop_errors(predictor, *val_batch, history, cfg.auto_steps)
        return float(err.mean())

    metrics = {"val_main": val_error(world_model.predictor)}
    for i, member in enumerate(ensemble.members):
        seed = cfg.seed + 1 + i
        torch.manual_seed(seed)
        picks = torch.randint(len(train_eps), (len(train_eps),), generator=gen)  # bootstrap
        clips = Clips.build(data, torch.tensor(train_eps)[picks], cfg.clip_len, k)
        member.train().requires_grad_(True)
        # the loss reads .encoder (unused: cached latents) and .predictor
        shell = SimpleNamespace(encoder=world_model.encoder, predictor=member)
        loss_fn = LeWMLoss(shell, history, cfg.auto_steps, 0.0, 1, cached=True)
        step = iter(range(cfg.steps * 2))

        def batch_loss(clips=clips, loss_fn=loss_fn, step=step, seed=seed) -> Tensor:
            ids = clips.clip_ids(next(step), cfg.batch_size, seed)
            return loss_fn(*clips.batch(ids))[0]

        t0 = time.perf_counter()
        fit(member, batch_loss, cfg.steps, cfg.lr, cfg.weight_decay, log_every=100)
        member.requires_grad_(False)
        metrics[f"val_member{i}"] = val_error(member)
        print(f"member {i}: {time.perf_counter() - t0:.0f} s, {metrics}", flush=True)
    return ensemble.eval(), metrics


def save_ensemble(
    ensemble: PredictorEnsemble, checkpoint: str | Path, cfg: EnsembleConfig, info: dict
) -> Path:
    """Write `ensemble.safetensors` into the checkpoint and declare it in config.json."""
    return save_extra(ensemble, checkpoint, KEY, {"config": asdict(cfg), **info})


def load_ensemble(
    checkpoint: str | Path, world_model: nn.Module, device: str | torch.device = "cpu"
) -> PredictorEnsemble | None:
    """The ensemble a checkpoint declares (members built like its predictor), or None."""

    def build(entry: dict) -> PredictorEnsemble:
        return PredictorEnsemble(world_model.predictor, int(entry["config"]["members"]))

    ensemble = load_extra(checkpoint, KEY, build, str(device))
    return None if ensemble is None else ensemble.requires_grad_(False)


def main(argv: list[str] | None = None) -> None:
    """`key=value` arguments: checkpoint=DIR data=[a.h5] [threads=N] and EnsembleConfig fields."""
    from omegaconf import OmegaConf

    from world_model import load_world_model

    args = OmegaConf.from_dotlist(sys.argv[1:] if argv is None else argv)
    checkpoint, data = args.pop("checkpoint", None), args.pop("data", None)
    if checkpoint is None or not data:
        raise SystemExit("usage: python -m world_model.heads.ensemble checkpoint=DIR data=[a.h5]")
    torch.set_num_threads(int(args.pop("threads", 1)))
    cfg = EnsembleConfig(**OmegaConf.to_container(args))
    world_model = load_world_model(checkpoint, device="cpu")
    frames = load_frames(list(data))
    latents = encode_frames(world_model.encoder, frames)
    ensemble, metrics = train_ensemble(world_model, latents, cfg)
    info = {**metrics, "data": list(data), "episodes": len(latents.lengths)}
    print(json.dumps(metrics), "->", save_ensemble(ensemble, checkpoint, cfg, info), flush=True)


if __name__ == "__main__":
    main()

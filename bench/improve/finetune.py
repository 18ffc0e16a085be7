"""A round's new checkpoint: the previous one trained on, with the planner's own outcomes.

The world model continues with the recipe it was trained with (`extra.train_config`: objective,
loss weights, clip length, learning rate) from its own weights (`train.init_from`) on the
original data plus `aggregated.h5`, for `finetune_steps`, the encoder at `encoder_lr_scale` x
the rate. wm-train's trainer runs it, so a killed fine-tune resumes from its last checkpoint.
The model keeps its normalisation statistics (the config it was saved with), so the action
head and the planner read the same scale. The checkpoint's planner settings
(`extra.recommended_eval`) travel with it, and its action head, if it has one, is retrained on
the new model's latents from the previous head's weights.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.recommend import set_recommended
from configs.schema import from_container
from envs.data.storage import atomic_dir
from world_model import load_world_model
from world_model.checkpoint import read_config
from world_model.config import RECOMMENDED_KEY
from world_model.heads.actor import load_actions, load_actor, save_actor, train_actor
from world_model.heads.extras import encode_episodes
from world_model.training.config import TrainConfig
from world_model.training.lewm_trainer import LeWMTrainer
from world_model.training.trainer import Trainer


def finetune_config(
    previous: Path,
    data: list[str],
    out_dir: Path,
    steps: int,
    encoder_lr_scale: float,
    seed: int,
    lr_scale: float = 1.0,
) -> TrainConfig:
    """The recipe `previous` was trained with (named when a key no longer exists), continued
    from its weights for `steps` on `data`: a short warmup (fresh optimiser moments), the
    second half decaying to 0, a resumable checkpoint at least once."""
    stored = read_config(previous)
    wm_cfg, extra = stored.world_model, stored.extra
    recipe = {k: v for k, v in extra["train_config"].items() if k != "world_model"}
    # A joint head's weights are only valid beside the checkpoint's own (lewm) world model
    # config, which is put back below: parse the recipe without them first.
    joint = {k: recipe.pop(k) for k in ("actor_weight", "actor_goal_weight") if k in recipe}
    try:
        base = from_container(TrainConfig, recipe, "train_config.")
    except (TypeError, ValueError) as err:
        raise ValueError(f"{previous}/config.json: its extra.train_config: {err}") from err
    optim = replace(
        base.optim,
        lr=base.optim.lr * lr_scale,
        warmup_steps=min(base.optim.warmup_steps, steps // 5),
        decay_steps=steps // 2,
        encoder_lr_scale=encoder_lr_scale,
    )
    return replace(
        base,
        data=list(data),
        world_model=wm_cfg,  # with its fitted statistics: the new data must not rescale it
        **joint,
        out_dir=str(out_dir),
        steps=steps,
        init_from=str(previous),
        val_every=min(base.val_every, steps),
        optim=optim,
        seed=seed,
        resume=True,
    )


def finetune(
    previous: Path, data: list[str], work: Path, target: Path, cfg: Any, seed: int
) -> dict[str, Any]:
    """Train the round's model in `work` (wm-train's run folder), give it the previous
    checkpoint's planner settings and a retrained action head, and move it to `target`
    atomically; returns the figures the round logs."""
    train_cfg = finetune_config(
        previous, data, work, cfg.finetune_steps, cfg.encoder_lr_scale, seed, cfg.finetune_lr_scale
    )
    objective = train_cfg.world_model.objective
    trainer = (LeWMTrainer if objective == "lewm" else Trainer)(train_cfg)
    metrics = trainer.run()
    built = work / "world_model"
    extra = read_config(previous).extra
    if RECOMMENDED_KEY in extra:  # what the previous round planned with, not wm-train's default
        set_recommended(built, extra[RECOMMENDED_KEY])
    head = retrain_actor(previous, built, data, cfg.actor_steps)
    atomic_dir(target, lambda tmp: _copy_files(built, tmp))
    figures = {"steps": trainer.step, "train_data": list(data)}
    figures |= {k: v for k, v in metrics.items() if k.startswith("val/") or k == "loss"}
    return figures | head


def retrain_actor(previous: Path, built: Path, data: list[str], steps: int) -> dict[str, Any]:
    """The previous checkpoint's action head, trained `steps` more on the latents the model in
    `built` gives `data`, saved into `built`; {} when the previous checkpoint has none."""
    old = load_actor(previous)
    if old is None:
        return {}
    if load_actor(built) is not None:  # trained jointly in the fine-tune (train.actor_weight)
        return {"actor_joint": 1.0}
    model = load_world_model(built)
    latents = encode_episodes(model, data)
    actions = load_actions(data)
    if [len(a) + 1 for a in actions] != [len(z) for z in latents]:
        raise ValueError(f"{data}: actions and frames disagree in length")
    predictor = model.predictor
    head, metrics = train_actor(
        latents, actions, model.action_block, predictor.action_mean, predictor.action_std,
        replace(old.cfg, steps=steps), log_every=0, init=old,
    )  # fmt: skip
    save_actor(head, built, {**metrics, "data": list(data), "episodes": len(latents)})
    return {f"actor_{k}": v for k, v in metrics.items()}


def _copy_files(source: Path, target: Path) -> None:
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)

"""`wm-train` and `wm-pretrain`, the two Hydra apps of the world model (one skeleton).

    wm-train data=[runs/data/reach.h5,runs/data/push.h5] steps=1000
    torchrun --nproc_per_node=2 -m world_model.training.train data=[...]   # DDP (gloo on CPU)
    wm-pretrain data=[runs/data/reach.h5] steps=300               # self-pretrain the encoder
    wm-train ... world_model.encoder.source=runs/pretrain/encoder

Each composes its config against a schema without the fitted fields (configs/schema.py), turns
it into the real dataclass once (`from_container`, whose `__post_init__` validates it) and hands
it to its loop; heavy imports wait until Hydra has parsed the CLI.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from configs.cli import one_line_errors, one_line_hydra_errors
from configs.schema import from_container
from world_model.training import config as train_config
from world_model.training import pretrain_config

train_config.register_configs()
pretrain_config.register_configs()


def typed_config(cfg: DictConfig, cls: type, app: str) -> Any:
    """The composed config as the dataclass `cls`; both apps need at least one dataset."""
    typed = from_container(cls, OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    if not typed.data:
        raise ValueError(f"{app}.data is empty: pass data=[path/to/dataset.h5,...]")
    return typed


@one_line_hydra_errors("wm-train")
@hydra.main(config_path="pkg://configs", config_name="train", version_base="1.3")
@one_line_errors("wm-train")
def train(cfg: DictConfig) -> None:
    """Train the action-conditioned predictor on cached encoder latents, or (`--config-name
    train_lewm`, objective `lewm`) encoder and predictor end to end from pixels."""
    from world_model.training.lewm_trainer import LeWMTrainer
    from world_model.training.trainer import Trainer

    typed = typed_config(cfg, train_config.TrainConfig, "train")
    trainer = (LeWMTrainer if typed.world_model.objective == "lewm" else Trainer)(typed)
    metrics = trainer.run()
    if trainer.dist.is_main:
        print({k: round(v, 5) for k, v in metrics.items()})


@one_line_hydra_errors("wm-pretrain")
@hydra.main(config_path="pkg://configs", config_name="pretrain", version_base="1.3")
@one_line_errors("wm-pretrain")
def pretrain(cfg: DictConfig) -> None:
    """V-JEPA pretraining of the tiny encoder on recorded sim video."""
    from world_model.training.pretrain_loop import pretrain as run_pretrain

    typed = typed_config(cfg, pretrain_config.PretrainConfig, "pretrain")
    print(f"encoder written to {run_pretrain(typed)}")

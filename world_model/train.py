"""`wm-train`: train the action-conditioned predictor on cached encoder latents (Hydra app).

wm-train data=[runs/data/reach.h5,runs/data/push.h5] steps=1000
torchrun --nproc_per_node=2 -m world_model.train data=[...]   # DDP (gloo on CPU)
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import hydra
from omegaconf import DictConfig, OmegaConf

from world_model.train_config import TrainConfig, register_configs

register_configs()


@hydra.main(config_path="pkg://configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from world_model.trainer import Trainer  # heavy imports after Hydra parsed the CLI

    train_cfg: TrainConfig = OmegaConf.to_object(cfg)
    if not train_cfg.data:
        raise ValueError("train.data is empty: pass data=[path/to/dataset.h5,...]")
    trainer = Trainer(train_cfg)
    metrics = trainer.run()
    if trainer.dist.is_main:
        print({k: round(v, 5) for k, v in metrics.items()})


if __name__ == "__main__":
    main()

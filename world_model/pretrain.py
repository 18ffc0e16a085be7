"""`wm-pretrain`: V-JEPA pretraining of the tiny encoder on recorded sim video (Hydra app).

wm-pretrain data=[runs/data/reach.h5,runs/data/push.h5] steps=300
wm-train ... world_model.encoder.source=runs/pretrain/encoder
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import hydra
from omegaconf import DictConfig, OmegaConf

from world_model.pretrain_config import PretrainConfig, register_configs

register_configs()


@hydra.main(config_path="pkg://configs", config_name="pretrain", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from world_model.pretrain_loop import pretrain  # heavy imports after Hydra parsed the CLI

    pre_cfg: PretrainConfig = OmegaConf.to_object(cfg)
    if not pre_cfg.data:
        raise ValueError("pretrain.data is empty: pass data=[path/to/dataset.h5,...]")
    print(f"encoder written to {pretrain(pre_cfg)}")


if __name__ == "__main__":
    main()

"""Count the leaf keys of the composed `wm-eval` and `wm-train` configs (issue 23's yardstick).

PYTHONPATH=. python scripts/count_config_fields.py
"""

from __future__ import annotations

from hydra import compose, initialize_config_module
from omegaconf import DictConfig


def leaves(node: object) -> int:
    """Leaf keys of a config node; a list or an empty mapping value counts as one field."""
    if isinstance(node, DictConfig) and len(node):
        return sum(leaves(node._get_node(k)) for k in node)
    return 1


def count(config_name: str) -> int:
    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose(config_name)
    return leaves(cfg)


def main() -> None:
    from agent.config import register_configs as register_eval
    from world_model.training.config import register_configs as register_train

    register_eval()
    register_train()
    for name in ("eval", "train"):
        print(f"{name}: {count(name)} leaf config keys")


if __name__ == "__main__":
    main()

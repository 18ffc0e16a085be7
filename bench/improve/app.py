"""`wm-improve` (configs/improve.yaml; bench/improve/__init__.py says what a round does).

The config is composed with Hydra's compose API rather than `@hydra.main`: every round composes
the anchors' eval config again (bench/anchors.py), which a running Hydra app would refuse.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import sys

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from configs.cli import one_line_hydra_errors
from configs.schema import check_known_keys


@one_line_hydra_errors("wm-improve")
def main(argv: list[str] | None = None) -> None:
    """`key=value` overrides of configs/improve.yaml; `--help` prints what a round does."""
    from bench.improve.config import ImproveConfig, register_configs

    args = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(args):
        import bench.improve

        print(bench.improve.__doc__)
        print("Settings (bench/improve/config.py, ImproveConfig):")
        print(OmegaConf.to_yaml(OmegaConf.structured(ImproveConfig)))
        return
    register_configs()
    with initialize_config_module("configs", version_base="1.3"):
        composed = compose("improve", overrides=args)
    check_known_keys(composed)
    cfg = OmegaConf.to_object(composed)
    from bench.improve.rounds import run  # heavy imports after the config is known good

    run(cfg)


if __name__ == "__main__":
    main()

"""A checkpoint directory as the agent sees it, its config.json parsed once per process.

Before the model loads, evaluation needs the checkpoint's action block (the goal offset of
protocol=dataset / replay, the oracle's blocks), its env contract and its recommended planner
settings; `read_checkpoint` parses and validates config.json for all of them, through the
world model's own reader (`world_model.checkpoint.read_config`: format, version upgrades,
retired keys). The `CheckpointInfo` it returns is passed down to whatever uses the checkpoint
(`evaluate`, `env_from_config`, `make_agent`, `load_agent`), and `load_model` / `load_head` /
`load_actor` hand the parsed file to the world model's loaders, so nothing reads it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import EvalConfig, check_recommended
from envs.common.contract import EnvContract
from world_model.checkpoint import CONFIG, CheckpointConfig, read_config
from world_model.config import RECOMMENDED_KEY, WorldModelConfig

if TYPE_CHECKING:
    import torch

    from world_model import WorldModel
    from world_model.heads.actor import ActionHead
    from world_model.heads.reachability import ReachabilityHead


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint directory says about the model it holds."""

    path: Path
    stored: CheckpointConfig | None = None
    """config.json as read (`world_model.checkpoint.read_config`); None when the directory
    holds no config.json (the oracle's default checkpoint next to a foreign env)."""
    recommended: dict[str, Any] = field(default_factory=dict)
    """The eval settings it plans with (`extra.recommended_eval`, agent/config.py)."""

    @property
    def world_model(self) -> WorldModelConfig | None:
        """Architecture, action block, history and latent layout (None without a model)."""
        return self.stored.world_model if self.stored is not None else None

    @property
    def env(self) -> EnvContract | None:
        """The env the model was trained on (rate, bounds, image size, workspace)."""
        return self.stored.env if self.stored is not None else None

    @property
    def action_block(self) -> int:
        """Control steps k per predictor step (1 without a model)."""
        return self.world_model.action_block if self.world_model is not None else 1

    @property
    def latent_layout(self) -> str | None:
        """`tokens` or `pooled` (None without a model)."""
        return self.world_model.encoder.latent_layout if self.world_model is not None else None

    def _model_config(self) -> CheckpointConfig:
        if self.stored is None:
            raise FileNotFoundError(
                f"{self.path / CONFIG} is missing: not a world-model checkpoint directory"
            )
        return self.stored

    def load_model(self, device: str | torch.device = "cpu") -> WorldModel:
        """The world model's weights on `device`, eval mode (world_model.load_world_model)."""
        from world_model import load_world_model

        return load_world_model(self._model_config(), device)

    def load_head(self, device: str | torch.device = "cpu") -> ReachabilityHead | None:
        """The reachability head the checkpoint ships, or None."""
        from world_model.heads.reachability import load_head

        return load_head(self._model_config(), str(device))

    def load_actor(self, device: str | torch.device = "cpu") -> ActionHead | None:
        """The action head the checkpoint ships, or None."""
        from world_model.heads.actor import load_actor

        return load_actor(self._model_config(), str(device))


def read_checkpoint(checkpoint: str | Path | CheckpointInfo) -> CheckpointInfo:
    """Parse `checkpoint/config.json` once (an already read `CheckpointInfo` passes through).
    A directory without config.json gives an info without a model; a malformed file or
    recommended entry is refused by name."""

    if isinstance(checkpoint, CheckpointInfo):
        return checkpoint
    path = Path(checkpoint)
    if path.is_file():  # not "missing": the user named the wrong thing
        raise NotADirectoryError(
            f"{path} is a file; a checkpoint is the directory holding {CONFIG} and the weights"
        )
    if not (path / CONFIG).is_file():
        return CheckpointInfo(path)
    stored = read_config(path)
    recommended = check_recommended(stored.extra.get(RECOMMENDED_KEY, {}), path / CONFIG)
    return CheckpointInfo(path, stored, recommended)


MODEL_KINDS = ("learned", "true_dynamics")
"""Agent kinds that run the checkpoint's model; the others only plan or act like it."""


def run_checkpoint(cfg: EvalConfig, named: bool = False) -> CheckpointInfo:
    """The checkpoint whose action block and recommended settings a run of `cfg` takes.

    The learned agents run `agent.checkpoint`. The others (oracle, random, expert) take from
    it only the blocks, horizon and goal offset of the learned agent they are compared with,
    so only from a checkpoint the user `named` or one trained on `cfg.env.id`: eval.yaml's
    default (reach_lewm) once lent its blocks (k = 2) and budget to the oracle on Reacher-v5.
    Otherwise an info without a model: blocks of one control step, no recommended settings.
    """
    info = read_checkpoint(cfg.agent.checkpoint)
    if named or cfg.agent.kind in MODEL_KINDS:
        return info
    trained_on = info.env.env_id if info.env is not None else None
    return info if trained_on == cfg.env.id.rpartition(":")[2] else CheckpointInfo(info.path)

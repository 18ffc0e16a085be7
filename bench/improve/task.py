"""What every round of `wm-improve` shares: the env, its start sets and the files, each input
checked once before the first episode, every refusal one line naming the input and the fix."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from agent.checkpoint import CheckpointInfo, read_checkpoint
from agent.factory import make_env
from bench.heldout import RECIPES, ROOT
from bench.improve.config import ImproveConfig
from envs.collect.rollout import dataset_root_attrs
from envs.common.contract import EnvContract
from envs.common.sim_state import state_kind, storable
from envs.data import open_dataset
from envs.goals.dataset_goal import DatasetGoal, check_recorded_env
from world_model.checkpoint import read_config
from world_model.config import RECOMMENDED_KEY

AGGREGATED = "aggregated.h5"
ROUNDS = "rounds.json"


@dataclass
class ImproveTask:
    """The env behind every round, its start sets and the aggregated dataset's attrs."""

    cfg: ImproveConfig
    env_name: str
    """How to make the env: the training data's `env_args.env_name` (`module:id` for a foreign
    env), else its `env_id`."""
    train_env: gym.Env
    """protocol=dataset over `cfg.data`, cut at `cfg.budget` control steps (recorded episodes)."""
    val_env: gym.Env
    """protocol=dataset over `cfg.val_data`."""
    root_attrs: dict[str, Any]
    """`data` attrs of aggregated.h5: the collectors' (envs/collect/rollout.py)."""
    task_seeds: list[int]
    """The seed each training episode was recorded with: its task instance, what a restart
    from its states needs (DatasetGoal resets with it)."""
    checkpoint: CheckpointInfo

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out_dir)

    @property
    def aggregated(self) -> Path:
        return self.out_dir / AGGREGATED

    def close(self) -> None:
        self.train_env.close()
        self.val_env.close()


def open_task(cfg: ImproveConfig) -> ImproveTask:
    """Check the inputs (refusing by name) and open the envs every round uses."""
    cfg.check_required()
    for name in ("data", "val_data"):
        if not Path(getattr(cfg, name)).is_file():
            raise FileNotFoundError(f"{name}={getattr(cfg, name)}: no such HDF5 file")
    check_not_heldout(cfg.val_data)
    if Path(cfg.val_data).resolve() == Path(cfg.data).resolve():
        raise ValueError(f"val_data={cfg.val_data} is the training data: record another set")
    checkpoint = check_checkpoint(cfg.checkpoint)
    check_lengths(cfg, checkpoint)
    env_name, kwargs, task_seeds, has_states = read_training_data(cfg.data)
    with contextlib.ExitStack() as opened:  # on a refusal, close what was opened
        env = make_env(env_name, kwargs)
        opened.callback(env.close)
        if not storable(env):
            raise ValueError(
                f"{env_name}: wm-improve restarts the simulator from saved states, and this "
                f"env's state cannot be stored ({state_kind(env)}); define get_sim_state()/"
                "set_sim_state() on it or register EnvHooks (envs/foreign/env_hooks.py)"
            )
        if not has_states:
            raise ValueError(
                f"data={cfg.data} holds no simulator states: record it with wm-collect from an "
                "env whose state envs/common/sim_state.py can save"
            )
        where = f"checkpoint {checkpoint.path} on data={cfg.data}"
        checkpoint.env.check_compatible(EnvContract.from_env(env), where)
        policy = {"name": "wm-improve", "checkpoint": cfg.checkpoint}
        root_attrs = dataset_root_attrs(env_name, kwargs, env, policy)
        train_goal = DatasetGoal(env, cfg.data, offset=cfg.goal_offset)
        opened.callback(train_goal.close)  # its reader; closing the env twice is harmless
        val_base = make_env(env_name, kwargs)
        opened.callback(val_base.close)
        val_env = DatasetGoal(val_base, cfg.val_data, offset=cfg.goal_offset)
        aggregated = Path(cfg.out_dir) / AGGREGATED
        if aggregated.exists():  # a resumed run: its episodes must be of this env
            with open_dataset(aggregated) as reader:
                check_recorded_env(reader, env)
        opened.pop_all()  # the task owns them now
    train_env = gym.wrappers.TimeLimit(train_goal, cfg.budget)
    return ImproveTask(cfg, env_name, train_env, val_env, root_attrs, task_seeds, checkpoint)


def read_training_data(path: str) -> tuple[str, dict[str, Any], list[int], bool]:
    """(how to make its env, the env's kwargs, each episode's seed, whether it holds simulator
    states) of the training data: the env is made as the collector made it."""
    with open_dataset(path) as reader:
        attrs = reader.attrs
        task_seeds = [int(reader.episode_attrs(i).get("seed", 0)) for i in range(len(reader))]
        has_states = len(reader) > 0 and reader[0].sim_states is not None
    env_args = attrs.get("env_args")
    env_name = env_args.get("env_name") if isinstance(env_args, dict) else None
    kwargs = attrs.get("env_kwargs")
    return (
        env_name or attrs["env_id"],
        kwargs if isinstance(kwargs, dict) else {},
        task_seeds,
        has_states,
    )


def check_lengths(cfg: ImproveConfig, checkpoint: CheckpointInfo) -> None:
    """Refuse episodes too short to train on and plans longer than an episode: the trainer
    cuts clips of `clip_len` frames one action block apart, and skips shorter episodes."""
    k = checkpoint.action_block
    clip_len = int(read_config(checkpoint.path).extra["train_config"].get("clip_len", 1))
    span = (clip_len - 1) * k + 1
    if cfg.budget + 1 < span:
        raise ValueError(
            f"budget={cfg.budget} records episodes of {cfg.budget + 1} frames; the checkpoint's "
            f"training clips span {span} ({clip_len} frames, {k} steps apart): raise budget"
        )
    if cfg.negative_horizon * k > cfg.budget:
        raise ValueError(
            f"negative_horizon={cfg.negative_horizon} blocks of {k} control steps exceed "
            f"budget={cfg.budget}: a hard negative is executed within one episode"
        )


def check_not_heldout(path: str) -> None:
    """Refuse a bench held-out set (bench/heldout.py) as the validation set."""
    resolved = Path(path).resolve()
    for task, (heldout, _) in RECIPES.items():
        if resolved in ((ROOT / heldout).resolve(), Path(heldout).resolve()):
            raise ValueError(
                f"val_data={path} is bench's held-out set of {task} (bench/heldout.py): what is "
                "selected on it may not be reported there; record a validation set with "
                "wm-collect at other seeds (scripts/improve_cube.sh)"
            )


def check_checkpoint(path: str) -> CheckpointInfo:
    """The checkpoint as read once, refused unless it holds what a round needs: a model, the
    env it was trained on and the recipe it was trained with."""
    info = read_checkpoint(path)
    where = f"checkpoint={path}"
    if info.world_model is None:
        raise ValueError(f"{where}: no config.json, not a world-model checkpoint")
    if info.env is None:
        raise ValueError(f"{where} records no env contract: retrain it with wm-train data=[...]")
    extra = info.stored.extra
    if not isinstance(extra.get("train_config"), dict):
        raise ValueError(
            f"{where} records no extra.train_config (the recipe wm-train saves with a model), "
            "so it cannot be fine-tuned as it was trained"
        )
    if info.recommended.get("agent.reachability_weight", 0) > 0:
        raise ValueError(
            f"{where} plans with its reachability head, which wm-improve does not retrain; "
            f"remove agent.reachability_weight from extra.{RECOMMENDED_KEY}"
        )
    if "reachability" in extra:
        print(f"note: {where}: its reachability head is not retrained; round checkpoints lack it")
    return info

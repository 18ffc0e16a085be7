"""``wm-collect``: record N episodes of an env and policy into a robomimic-layout HDF5 file.

    wm-collect env=panda_push policy.name=mixed policy.noise_max=0.4 num_episodes=500 \
        num_workers=2 output=data/push.h5

Episodes are recorded by ``num_workers`` spawned processes, each writing finished episodes
atomically into ``<output>.parts/``; when all are there they are merged into ``<output>``.
Killing the run loses only the episodes in flight: the same command resumes.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from envs.collect_config import (
    CollectConfig,
    DMCEnvEntry,
    GymEnvEntry,
    PandaEnvEntry,
    foreign_env_node,
    register_configs,
)
from envs.dataset import (
    discard_temporaries,
    finished_parts,
    merge_parts,
    open_dataset,
    write_episode_part,
)

register_configs()

_WORKER: dict[str, Any] = {}  # per-process env, kept across episodes


def make_env(entry: PandaEnvEntry | DMCEnvEntry | GymEnvEntry) -> gym.Env:
    """``gym.make`` an env entry (honouring its ``max_episode_steps`` override)."""
    import envs  # noqa: F401  (registers the wm/* ids in this process)

    if isinstance(entry, GymEnvEntry):
        from envs.foreign import make_gym_env

        return make_gym_env(
            entry.id, max_episode_steps=entry.max_episode_steps, **entry.make_kwargs()
        )

    steps = {"max_episode_steps": entry.max_episode_steps} if entry.max_episode_steps else {}
    return gym.make(entry.id, **steps, **entry.make_kwargs())


def episode_plan(cfg: CollectConfig, index: int) -> dict[str, Any]:
    """Deterministic per-episode choices: seed, policy, noise (independent of worker timing)."""
    rng = np.random.default_rng([cfg.seed, index])
    p = cfg.policy
    name = p.name
    if name == "mixed":
        name = "expert" if rng.random() < p.expert_fraction else "random"
    noise = float(rng.uniform(p.noise, max(p.noise, p.noise_max))) if name == "expert" else 0.0
    return {"seed": cfg.seed + index, "policy": name, "noise": noise}


def _init_worker(cfg: CollectConfig) -> None:
    _WORKER["cfg"] = cfg
    _WORKER["env"] = make_env(cfg.env)


def _record(index: int) -> tuple[int, bool]:
    from envs.experts import make_policy
    from envs.rollout import record_episode

    cfg, env = _WORKER["cfg"], _WORKER["env"]
    plan = episode_plan(cfg, index)
    policy = make_policy(plan["policy"], env, noise=plan["noise"], seed=plan["seed"])
    attrs = {"env_id": cfg.env.id, "policy": plan["policy"], "noise": plan["noise"]}
    episode = record_episode(env, policy, plan["seed"], attrs)
    write_episode_part(_parts_dir(cfg), index, episode, cfg.compression)
    return index, bool(episode.attrs["success"])


def _parts_dir(cfg: CollectConfig) -> Path:
    out = Path(cfg.output)
    return out.with_name(out.name + ".parts")


def collect(cfg: CollectConfig) -> Path:
    """Record the missing episodes, then merge; returns the dataset path."""
    from envs.rollout import dataset_root_attrs

    out = Path(cfg.output)
    if out.exists():
        with open_dataset(out) as reader:  # refuses a corrupt file with a clear error
            if len(reader) >= cfg.num_episodes:
                print(f"{out}: already complete ({len(reader)} episodes)")
                for part in finished_parts(_parts_dir(cfg)).values():  # killed after the merge
                    part.unlink()
                return out
            raise FileExistsError(
                f"{out} holds {len(reader)} episodes < num_episodes={cfg.num_episodes}; "
                "choose another output or delete it"
            )
    parts = _parts_dir(cfg)
    discard_temporaries(parts)  # one collector per output: leftovers are from a killed run
    done = finished_parts(parts)
    todo = [k for k in range(cfg.num_episodes) if k not in done]
    bar = tqdm(
        total=cfg.num_episodes, initial=cfg.num_episodes - len(todo), desc=f"collect {cfg.env.id}"
    )
    successes = []
    if cfg.num_workers == 0:
        _init_worker(cfg)
        results = map(_record, todo)
        _drain(results, bar, successes)
    elif todo:
        with mp.get_context("spawn").Pool(
            min(cfg.num_workers, len(todo)), initializer=_init_worker, initargs=(cfg,)
        ) as pool:
            _drain(pool.imap_unordered(_record, todo), bar, successes)
    bar.close()
    env = make_env(cfg.env)
    policy = OmegaConf.to_container(OmegaConf.structured(cfg.policy))
    attrs = dataset_root_attrs(cfg.env.id, cfg.env.make_kwargs(), env, policy)
    env.close()
    merge_parts(parts, out, attrs)
    with open_dataset(out) as reader:
        rate = np.mean([reader.episode_attrs(i)["success"] for i in range(len(reader))])
        print(f"{out}: {len(reader)} episodes, success rate {rate:.2f}")
    return out


def _drain(results: Any, bar: tqdm, successes: list[bool]) -> None:
    for _, success in results:
        successes.append(success)
        bar.update(1)
        bar.set_postfix(success=f"{np.mean(successes):.2f}")


@hydra.main(config_path="pkg://configs", config_name="collect", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Console script ``wm-collect``."""
    collect(OmegaConf.to_object(foreign_env_node(cfg)))


if __name__ == "__main__":
    main()

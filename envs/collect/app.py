"""``wm-collect``: record N episodes of an env and policy into a robomimic-layout HDF5 file
(or, with ``format=lerobot``, a LeRobotDataset v3 directory: `envs.data.lerobot`).

    wm-collect env=panda_push policy.name=mixed policy.noise_max=0.4 num_episodes=500 \
        num_workers=2 output=data/push.h5

Episodes are recorded by ``num_workers`` spawned processes, each writing finished episodes
atomically into ``<output>.parts/``; when all are there they are merged into ``<output>``.
Killing the run loses only the episodes in flight: the same command resumes. A part is reused
only when its signature matches this command (`envs.collect.parts`); workers whose collector
died stop on their own.
"""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from configs.cli import one_line_errors, one_line_hydra_errors
from envs.collect.config import (
    NOISY_POLICIES,
    CollectConfig,
    DMCEnvEntry,
    GymEnvEntry,
    OGBenchCubeEntry,
    PandaEnvEntry,
    foreign_env_node,
    register_configs,
)
from envs.collect.parts import (
    SIGNATURE_ATTR,
    check_existing_output,
    check_parts,
    part_signature,
)
from envs.data import open_dataset
from envs.data.episode import DatasetError
from envs.data.hdf5 import discard_temporaries, finished_parts, merge_parts, write_episode_part
from envs.data.storage import (
    DiskFullError,
    check_writable,
    remove_path,
    remove_stale_temporaries,
)

register_configs()

_WORKER: dict[str, Any] = {}  # per-process env, kept across episodes


def make_env(entry: PandaEnvEntry | DMCEnvEntry | OGBenchCubeEntry | GymEnvEntry) -> gym.Env:
    """``gym.make`` an env entry (honouring its ``max_episode_steps`` override)."""
    import envs  # noqa: F401  (registers the wm/* ids in this process)

    if isinstance(entry, GymEnvEntry):
        from envs.foreign.make import make_gym_env

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
    noisy = name in NOISY_POLICIES
    noise = float(rng.uniform(p.noise, max(p.noise, p.noise_max))) if noisy else 0.0
    return {"seed": cfg.seed + index, "policy": name, "noise": noise}


def _init_worker(cfg: CollectConfig, parent: int | None = None) -> None:
    _WORKER["cfg"] = cfg
    _WORKER["parent"] = parent
    _WORKER["env"] = make_env(cfg.env)
    if parent is not None:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    """Worker side: a collector killed with SIGKILL cannot stop its pool, so each worker
    watches its parent and exits once it is gone (instead of writing parts for seconds
    into a folder a rerun may already own)."""
    while os.getppid() == parent:
        time.sleep(0.1)
    os._exit(1)


def _record(index: int) -> tuple[int, bool]:
    from envs.collect.rollout import record_episode
    from envs.common.experts import make_policy

    cfg, env = _WORKER["cfg"], _WORKER["env"]
    plan = episode_plan(cfg, index)
    policy = make_policy(plan["policy"], env, noise=plan["noise"], seed=plan["seed"])
    attrs = {"env_id": cfg.env.id, "policy": plan["policy"], "noise": plan["noise"]}
    episode = record_episode(env, policy, plan["seed"], attrs)
    if _WORKER.get("parent") not in (None, os.getppid()):
        os._exit(1)  # the collector died while this episode ran: write nothing
    signature = {SIGNATURE_ATTR: json.dumps(part_signature(cfg, index))}
    write_episode_part(_parts_dir(cfg), index, episode, cfg.compression, signature)
    return index, bool(episode.attrs["success"])


def _parts_dir(cfg: CollectConfig) -> Path:
    out = Path(cfg.output)
    return out.with_name(out.name + ".parts")


def collect(cfg: CollectConfig) -> Path:
    """Record the missing episodes, then merge; returns the dataset path."""
    from envs.collect.rollout import dataset_root_attrs

    if cfg.format == "lerobot":
        return _collect_lerobot(cfg)
    out = Path(cfg.output)
    if out.is_dir():
        raise DatasetError(f"output={out} is a directory; give a file path such as {out}/x.h5")
    if out.exists():
        with open_dataset(out) as reader:  # refuses a corrupt file with a clear error
            check_existing_output(reader, cfg)
        print(f"{out}: already complete ({cfg.num_episodes} episodes)")
        remove_path(_parts_dir(cfg))  # killed after the merge, before the parts were deleted
        return out
    parts = _parts_dir(cfg)
    # Dead writers' leftovers first: on a full disk they are what fills it.
    discard_temporaries(parts)  # half-written parts of dead writers
    for pattern in (f".{out.name}.tmp-*", f"{out.name}.tmp.*"):  # a killed merge (older: .tmp.)
        remove_stale_temporaries(out.parent, pattern)
    remove_path(out.with_name(f"{out.name}.tmp"))  # the pid-less name earlier versions used
    try:
        env = _record_missing(cfg, parts)
    except BaseException as err:
        _tidy_parts(parts)
        if isinstance(err, DiskFullError):
            kept = len(finished_parts(parts))
            raise DiskFullError(
                errno.ENOSPC,
                f"{err.strerror}; the {kept} finished episodes in {parts} stay: run the same command "
                "again once there is room",
            ) from err
        raise
    policy = OmegaConf.to_container(OmegaConf.structured(cfg.policy))
    attrs = dataset_root_attrs(cfg.env.id, cfg.env.make_kwargs(), env, policy)
    env.close()
    merge_parts(parts, out, attrs, indices=range(cfg.num_episodes))
    extra = finished_parts(parts) if parts.is_dir() else {}
    if extra:  # parts past num_episodes, from a longer killed run: never merged
        print(f"{out}: discarding {len(extra)} parts beyond num_episodes={cfg.num_episodes}")
        remove_path(parts)
    with open_dataset(out) as reader:
        rate = np.mean([reader.episode_attrs(i)["success"] for i in range(len(reader))])
        print(f"{out}: {len(reader)} episodes, success rate {rate:.2f}")
    return out


def _record_missing(cfg: CollectConfig, parts: Path) -> gym.Env:
    """Record the episodes ``parts`` lacks into it; -> the env (for the dataset's attrs)."""
    check_writable(parts)  # before the first episode, not after it
    done = check_parts(finished_parts(parts), cfg, parts)
    todo = [k for k in range(cfg.num_episodes) if k not in done]
    env = make_env(cfg.env)  # for the dataset's attrs, and to say now what it cannot record
    if todo:
        warn_without_sim_states(env, cfg.env.id)
    bar = tqdm(
        total=cfg.num_episodes, initial=cfg.num_episodes - len(todo), desc=f"collect {cfg.env.id}"
    )
    successes: list[bool] = []
    if cfg.num_workers == 0:
        _init_worker(cfg)
        results = map(_record, todo)
        _drain(results, bar, successes)
    elif todo:
        with mp.get_context("spawn").Pool(
            min(cfg.num_workers, len(todo)), initializer=_init_worker, initargs=(cfg, os.getpid())
        ) as pool:
            _drain(pool.imap_unordered(_record, todo), bar, successes)
    bar.close()
    return env


def _tidy_parts(parts: Path) -> None:
    """After a failed recording: delete the half-written parts of workers that were stopped
    mid-write, and the parts folder itself when no episode made it (a refused env, a full
    disk at the first part). Finished parts stay for the rerun to resume from."""
    discard_temporaries(parts)
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()


def _collect_lerobot(cfg: CollectConfig) -> Path:
    """``format=lerobot``: record into ``<output>.collect.h5`` exactly as an HDF5 run
    (resumable parts), export that to the LeRobot v3 directory ``output`` (lossless video),
    delete it. Its own name, so a user's ``<output>.h5`` is never taken or deleted."""
    from envs.data.lerobot.convert import export_hdf5

    out = Path(cfg.output)
    recording = out.with_name(out.name + ".collect.h5")
    if out.exists():
        with open_dataset(out) as reader:  # a directory: the LeRobot reader checks it
            check_existing_output(reader, cfg)
        print(f"{out}: already complete ({cfg.num_episodes} episodes)")
        # killed between the export and deleting the recording: what is left of it is ours
        for leftover in (recording, recording.with_name(recording.name + ".parts")):
            remove_path(leftover)
        return out
    h5 = collect(replace(cfg, format="hdf5", output=str(recording)))
    export_hdf5(h5, out)
    h5.unlink()
    print(f"{out}: LeRobot v3 dataset")
    return out


def warn_without_sim_states(env: gym.Env, env_id: str) -> bool:
    """One stderr line when episodes will be recorded without simulator states; returns
    whether it warned. Without them protocol=dataset cannot restart from a recorded frame and
    the oracle cannot plan towards one, which a user would otherwise learn only at eval time."""
    from envs.common.sim_state import state_kind, storable

    if storable(env):
        return False
    print(
        f"wm-collect: warning: {env_id} ({type(env.unwrapped).__name__}) has no simulator state "
        f"a dataset can store (envs/common/sim_state.py: {state_kind(env)}), so none is recorded: "
        "env.protocol=dataset and the oracle will not work on this dataset; define "
        "get_sim_state()/set_sim_state() on the env or register EnvHooks "
        "(envs/foreign/env_hooks.py)",
        file=sys.stderr,
    )
    return True


def _drain(results: Any, bar: tqdm, successes: list[bool]) -> None:
    for _, success in results:
        successes.append(success)
        bar.update(1)
        bar.set_postfix(success=f"{np.mean(successes):.2f}")


@one_line_hydra_errors("wm-collect")
@hydra.main(config_path="pkg://configs", config_name="collect", version_base="1.3")
@one_line_errors("wm-collect")
def main(cfg: DictConfig) -> None:
    """Console script ``wm-collect``."""
    collect(OmegaConf.to_object(foreign_env_node(cfg)))


if __name__ == "__main__":
    main()

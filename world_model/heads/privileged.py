"""Privileged training labels: the task positions of every recorded frame, read back from
the simulator states a dataset stores. Only training may use them (LeWM and C-JEPA train from
pixels alone); a model that did says so in its config (`world_model.position_dims`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def recorded_task_positions(paths: list[str]) -> Tensor:
    """`(F, K, D)` float32 task positions (envs/distance.py: the env's own `task_positions`,
    else body centres) of every recorded frame, in the flat frame order of `load_frames` /
    `cached_latents`: each simulator state is restored into an env of the recorded id."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the wm/* ids)
    from envs.dataset import open_dataset
    from envs.distance import TaskDistance
    from envs.sim_state import set_sim_state

    out = []
    for path in paths:
        with open_dataset(path) as reader:
            env = gym.make(reader.attrs["env_id"])
            try:
                env.reset(seed=0)
                read = TaskDistance(env)
                for ep in reader:
                    if ep.sim_states is None:
                        raise ValueError(
                            f"{path}: {ep.attrs.get('name', 'an episode')} has no simulator "
                            "states, which the privileged position labels need; re-collect it with "
                            "wm-collect"
                        )
                    for state in ep.sim_states:
                        set_sim_state(env, state)
                        out.append(read.features())
            finally:
                env.close()
    if not out:
        raise ValueError("no frames in the given datasets")
    return torch.as_tensor(np.stack(out), dtype=torch.float32)

"""Run one episode of a policy in an env and return it as a dataset `Episode`."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np

from envs.common.contract import EnvContract
from envs.common.experts import BehaviourPolicy
from envs.common.sim_state import get_sim_state, storable
from envs.data.episode import Episode


def record_episode(
    env: gym.Env, policy: BehaviourPolicy, seed: int, attrs: dict[str, Any] | None = None
) -> Episode:
    """Reset with ``seed``, act until termination/truncation, keep every frame and action.

    Runs the full time limit even after success (fixed-length episodes, like DROID clips, keep
    the world model's data free of a "stop at success" bias).
    """
    obs, info = env.reset(seed=seed)
    # Sources without a goal image (generic adapter) get their final frame (hindsight goal).
    goal_pixels, goal_state = info.get("goal_pixels"), info.get("goal_state")
    # Simulator states (envs/common/sim_state.py) let dataset goals and the oracle restart from
    # any frame.
    has_sim = storable(env)
    pixels, states, actions, rewards = [obs["pixels"]], [obs["state"]], [], []
    sim_states = [get_sim_state(env)] if has_sim else []
    done = False
    while not done:
        action = np.asarray(policy(obs, info), np.float32)
        # Store what the env executed: the action clipped into its bounds.
        action = np.clip(action, env.action_space.low, env.action_space.high)
        obs, reward, terminated, truncated, info = env.step(action)
        pixels.append(obs["pixels"])
        states.append(obs["state"])
        actions.append(action)
        rewards.append(reward)
        if has_sim:
            sim_states.append(get_sim_state(env))
        done = terminated or truncated
    if goal_pixels is None:
        goal_pixels, goal_state = pixels[-1], states[-1]
    return Episode(
        pixels=np.stack(pixels),  # (L+1, H, W, 3)
        states=np.stack(states).astype(np.float32),  # (L+1, 7)
        actions=np.stack(actions),  # (L, 7)
        goal_pixels=goal_pixels,
        goal_state=np.asarray(goal_state, np.float32),
        attrs={
            **(attrs or {}),
            "seed": seed,
            "success": bool(info["success"]),
            "distance": float(info["distance"]),
        },
        rewards=np.asarray(rewards, np.float32),
        sim_states=np.stack(sim_states) if has_sim else None,
    )


def dataset_root_attrs(
    env_id: str, env_kwargs: dict[str, Any], env: gym.Env, policy: dict[str, Any]
) -> dict[str, Any]:
    """Root ``data`` attrs: env id and kwargs (JSON, robomimic ``env_args`` too), rate, camera."""
    base = env.unwrapped
    cfg = getattr(base, "cfg", None)
    camera = (
        {
            "name": "front",
            "pos": cfg.camera_pos,
            "target": cfg.camera_target,
            "fovy": cfg.camera_fovy,
        }
        if hasattr(cfg, "camera_pos")
        else {
            "name": env_kwargs.get("camera_name")
            or f"camera_id_{getattr(cfg, 'camera_id', env_kwargs.get('camera_id', 0))}"
        }
    )
    from envs import ENV_REVISION

    contract = EnvContract.from_env(env)
    # ``module:id`` is how to make a foreign env; the env itself (and so every contract and
    # dataset-goal check) knows only ``id``. env_args keeps the full form to rebuild it.
    registered = env_id.rpartition(":")[2]
    return {
        "env_id": registered,
        "env_revision": ENV_REVISION,
        "env_kwargs": json.dumps(env_kwargs),
        "env_args": json.dumps({"env_name": env_id, "type": "gymnasium", "env_kwargs": env_kwargs}),
        "control_hz": contract.control_hz,
        "camera": json.dumps(camera),
        "image_size": contract.image_size,
        "policy": json.dumps(policy),
        # What wm-train copies into the checkpoint (envs/common/contract.py).
        "env_contract": json.dumps({**contract.to_dict(), "env_id": registered}),
    }

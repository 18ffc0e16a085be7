"""bench/plan_diagnosis: the real final frames it encodes are the env's own, and it leaves the
live env untouched (the diagnosis must not move the episode it diagnoses)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers wm/*)
from bench.plan_diagnosis import final_frames


def test_final_frames_match_step_and_restore_the_env() -> None:
    env = gym.make("wm/PandaPush-v0", image_size=32)
    env.reset(seed=3)
    base = env.unwrapped
    start = base.get_sim_state()
    rng = np.random.default_rng(0)
    plans = rng.uniform(env.action_space.low, env.action_space.high, (2, 3, 7)).astype(np.float32)
    frames = final_frames(env, plans)
    assert frames.shape == (2, 32, 32, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(base.get_sim_state(), start)  # restored
    for plan, frame in zip(plans, frames, strict=True):
        base.set_sim_state(start)
        for a in plan:
            obs, *_ = env.step(a)
        np.testing.assert_array_equal(frame, obs["pixels"])
    assert not np.array_equal(frames[0], frames[1])  # different plans, different endings
    env.close()

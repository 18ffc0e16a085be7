"""bench.energy poses real configurations of a push instance without touching the live
simulator, and scores them with a checkpoint's energies."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the wm/* ids)
from bench.energy import CONFIGS, measure_configs, posed_frames
from world_model import WorldModelConfig, build_world_model, save_world_model
from world_model.heads.reachability import ReachabilityConfig, ReachabilityHead, save_head


def test_posed_frames_differ_and_leave_the_live_simulator_alone():
    env = gym.make("wm/PandaPush-v0", image_size=32)
    obs, _ = env.reset(seed=3)
    u = env.unwrapped
    cube, ee = u.cube_pos(), u.ee_pos()
    frames = posed_frames(env)
    assert list(frames) == list(CONFIGS)
    np.testing.assert_array_equal(frames["start"], obs["pixels"])
    for name in CONFIGS[1:]:  # each moves the arm or the cube somewhere visible
        assert np.abs(frames[name].astype(int) - frames["start"]).sum() > 0, name
    np.testing.assert_array_equal(u.cube_pos(), cube)
    np.testing.assert_array_equal(u.ee_pos(), ee)
    env.close()


def test_measure_reports_each_energy_relative_to_the_start(tmp_path):
    cfg = WorldModelConfig(
        encoder={"hidden_size": 32, "num_layers": 1, "num_heads": 2, "latent_pool": 2},
        predictor={"embed_dim": 32, "width": 48, "depth": 1, "num_heads": 2},
    )
    wm = build_world_model(cfg)
    ckpt = save_world_model(wm, tmp_path / "wm")
    rows = measure_configs(str(ckpt), "wm/PandaPush-v0", instances=2, seed=0)
    assert [r["energy"] for r in rows] == ["distance"]  # no head in this checkpoint
    head = ReachabilityHead(ReachabilityConfig(budget=5), wm.num_tokens, wm.latent_dim)
    save_head(head, ckpt)
    rows = measure_configs(str(ckpt), "wm/PandaPush-v0", instances=2, seed=0)
    assert [r["energy"] for r in rows] == ["distance", "head"]
    for r in rows:
        assert r["start_over_start"] == 1.0 and r["instances"] == 2
        assert 0.0 <= r["standoff_first"] <= 1.0
        assert all(np.isfinite(r[f"{c}_over_start"]) for c in CONFIGS)

"""train.position_weight: the privileged position head (task positions from simulator states)."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import envs  # noqa: F401
from envs.dataset import merge_parts, write_episode_part
from envs.experts import make_policy
from envs.rollout import dataset_root_attrs, record_episode
from world_model import load_world_model
from world_model.config import EncoderConfig, PredictorConfig, WorldModelConfig
from world_model.training.config import OptimConfig, TrainConfig
from world_model.training.lewm_trainer import LeWMTrainer

ENV_ID = "wm/PandaPush-v0"


def test_position_head_learns_the_recorded_positions_and_travels_with_the_model(tmp_path):
    env = gym.make(ENV_ID, max_episode_steps=24, image_size=16)
    for i in range(3):
        ep = record_episode(env, make_policy("expert", env, seed=i), i)
        write_episode_part(tmp_path / "parts", i, ep)
    h5 = tmp_path / "push.h5"
    merge_parts(tmp_path / "parts", h5, dataset_root_attrs(ENV_ID, {}, env, {"name": "expert"}))
    env.close()
    wm = WorldModelConfig(
        encoder=EncoderConfig(
            backend="conv", latent_layout="pooled", crop_size=16, hidden_size=16,
            conv_channels=[8, 16], proj_hidden=32,
        ),
        predictor=PredictorConfig(
            embed_dim=16, width=24, depth=1, num_heads=2, normalize_output=False, use_state=False
        ),
        action_block=2, history=2,
    )  # fmt: skip
    cfg = TrainConfig(
        data=[str(h5)], out_dir=str(tmp_path / "run"), world_model=wm, steps=40, batch_size=8,
        clip_len=4, auto_steps=2, sigreg_proj=16, position_weight=1.0, val_every=40,
        ckpt_every=40, num_threads=1, val_fraction=0.0,
        optim=OptimConfig(lr=3e-3, warmup_steps=2, decay_steps=10),
    )  # fmt: skip
    tr = LeWMTrainer(cfg)
    assert tr.model.cfg.position_dims == 6  # end effector + cube, xyz each
    batch = tr.local_batch(0)
    assert len(batch) == 4 and batch[3].shape == (8, 4, 6)
    assert abs(float(tr.positions.mean())) < 0.1  # normalised by the training frames
    first = tr.name_parts(tr.loss_fn(*batch)[1])["position_mse"]
    tr.run()
    last = tr.name_parts(tr.loss_fn(*batch)[1])["position_mse"]
    assert last < 0.7 * first
    saved = load_world_model(tmp_path / "run" / "world_model")
    assert saved.cfg.position_dims == 6
    frames = tr.train_clips.batch(torch.arange(2))[0]
    with torch.no_grad():
        pos = saved.read_positions(saved.encode(frames))  # metres
    assert pos.shape == (2, 4, 6) and pos.abs().max() < 2.0
    with pytest.raises(ValueError, match="position_weight"):
        TrainConfig(position_weight=-1.0)

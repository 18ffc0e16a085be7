"""wm-train: overfitting, schedule, exact resume, DDP == single process, latent cache, CLI."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from envs.common.contract import EnvContract
from tests.synthetic import synthetic_episodes
from world_model.config import EncoderConfig, PredictorConfig, WorldModelConfig
from world_model.model.predictor import ACPredictor
from world_model.training.config import OptimConfig, TrainConfig
from world_model.training.latents import LatentSet, cached_latents, dataset_contract
from world_model.training.losses import ACLoss
from world_model.training.train_state import lr_at
from world_model.training.trainer import Trainer

TINY_WM = WorldModelConfig(
    encoder=EncoderConfig(crop_size=16, patch_size=4, hidden_size=16, num_layers=1, num_heads=2),
    predictor=PredictorConfig(embed_dim=16, width=32, depth=1, num_heads=2),
)
# tests/synthetic.py: a square moved by up to 0.25 per step in x and y, 16 px frames.
SYNTHETIC_CONTRACT = EnvContract(
    env_id="synthetic",
    control_hz=5.0,
    action_low=(-0.25, -0.25, 0.0, 0.0, 0.0, 0.0, 0.0),
    action_high=(0.25, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0),
    image_size=16,
    state_dim=7,
    action_dim=7,
)
TINY_WM_OVERRIDES = [
    "world_model.encoder.crop_size=16",
    "world_model.encoder.patch_size=4",
    "world_model.encoder.hidden_size=16",
    "world_model.encoder.num_layers=1",
    "world_model.encoder.num_heads=2",
    "world_model.predictor.embed_dim=16",
    "world_model.predictor.width=32",
    "world_model.predictor.depth=1",
    "world_model.predictor.num_heads=2",
]


def random_latents(episodes: int = 6, length: int = 7, seed: int = 0) -> LatentSet:
    g = torch.Generator().manual_seed(seed)
    frames = episodes * length
    lengths = torch.full((episodes,), length)
    return LatentSet(
        latents=torch.nn.functional.layer_norm(torch.randn(frames, 4, 16, generator=g), (16,)),
        states=torch.randn(frames, 7, generator=g),
        actions=torch.randn(frames, 7, generator=g),
        starts=torch.arange(episodes) * length,
        lengths=lengths,
        tasks=["a"] * episodes,
    )


def tiny_cfg(out_dir: Path, **kw) -> TrainConfig:
    base = dict(
        out_dir=str(out_dir),
        cache_dir=str(out_dir / "cache"),
        world_model=TINY_WM,
        steps=6,
        batch_size=4,
        clip_len=3,
        val_fraction=0.2,
        log_every=2,
        val_every=3,
        optim=OptimConfig(warmup_steps=2, decay_steps=2),
    )
    return TrainConfig(**(base | kw))


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread avoids OpenMP oversubscription on a busy 2-core runner."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_overfits_a_tiny_batch(one_thread):
    torch.manual_seed(0)
    predictor = ACPredictor(TINY_WM.predictor)
    loss_fn = ACLoss(predictor, auto_steps=2)
    data = random_latents()
    z = data.latents[:12].reshape(4, 3, 4, 16)  # (B, T, N, D)
    actions, states = torch.randn(4, 2, 7), torch.randn(4, 3, 7)
    opt = torch.optim.AdamW(predictor.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss, _ = loss_fn(z, actions, states)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_schedule_warmup_constant_decay():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, decay_steps=10)
    assert lr_at(0, cfg, 100) == pytest.approx(1e-4)  # WARMUP_START_LR
    assert lr_at(5, cfg, 100) == pytest.approx(0.50005)
    assert lr_at(10, cfg, 100) == lr_at(89, cfg, 100) == 1.0
    assert lr_at(95, cfg, 100) == pytest.approx(0.5)
    assert lr_at(100, cfg, 100) == pytest.approx(0.0)


def test_config_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="clip_len=2"):
        tiny_cfg(tmp_path, clip_len=2, auto_steps=2)
    with pytest.raises(ValueError, match="batch_size=0"):
        tiny_cfg(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="device='tpu'"):
        tiny_cfg(tmp_path, device="tpu")


def predictor_params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.predictor.state_dict().items()}


def test_resume_after_kill_is_exact(tmp_path, one_thread):
    data = random_latents()
    straight = Trainer(tiny_cfg(tmp_path / "a"), latents=data)
    straight.run()
    # second run: "killed" right after the step-3 checkpoint, then restarted
    first = Trainer(tiny_cfg(tmp_path / "b"), latents=data)
    while first.step < 3:
        first.train_step(*first.local_batch(first.step))
        first.step += 1
    first.checkpoint()
    del first
    resumed = Trainer(tiny_cfg(tmp_path / "b"), latents=data)
    assert resumed.step == 3
    resumed.run()
    a, b = predictor_params(straight), predictor_params(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "b" / "world_model" / "model.safetensors").is_file()
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text() == "step_0000006"
    assert any((tmp_path / "b" / "tb").iterdir())


def _ddp_worker(rank: int, world: int, out_dir: str) -> None:
    os.environ |= {"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank)}
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    # a file rendezvous instead of a TCP port: no race with other jobs for a free port
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )  # fmt: skip
    trainer = Trainer(tiny_cfg(Path(out_dir), resume=False), latents=random_latents())
    trainer.train_step(*trainer.local_batch(0))
    if rank == 0:
        torch.save(predictor_params(trainer), Path(out_dir) / "ddp.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_step_equals_single_process(tmp_path):
    single = Trainer(tiny_cfg(tmp_path / "single", resume=False), latents=random_latents())
    single.train_step(*single.local_batch(0))
    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    ref = predictor_params(single)
    for key, value in ref.items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-6, msg=key)


def write_h5(path: Path, episodes, contract: EnvContract = SYNTHETIC_CONTRACT) -> Path:
    from envs.data.episode import Episode
    from envs.data.hdf5 import merge_parts, write_episode_part

    parts = path.parent / (path.stem + "_parts")
    for i, ep in enumerate(episodes):
        e = Episode(ep.pixels, ep.states, ep.actions, ep.goal_pixels, ep.goal_state, ep.attrs)
        write_episode_part(parts, i, e)
    root = {
        "env_id": contract.env_id,
        "env_kwargs": {},
        "control_hz": contract.control_hz,  # root attrs restate the contract (reader checks)
        "camera": "synthetic",
        "image_size": int(episodes[0].pixels.shape[1]),
        "policy": "random",
        "env_contract": json.dumps(contract.to_dict()),
    }
    return merge_parts(parts, path, root)


def test_latent_cache_is_reused_and_keyed(tmp_path):
    from world_model.model.encoder import build_encoder

    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(3, length=5, size=16))
    encoder = build_encoder(TINY_WM.encoder)
    logs: list[str] = []
    first = cached_latents([h5], encoder, tmp_path / "cache", logs.append)
    second = cached_latents([h5], encoder, tmp_path / "cache", logs.append)
    assert len(logs) == 1 and torch.equal(first.latents, second.latents)
    assert first.latents.shape == (18, 4, 16) and first.tasks == ["synthetic"] * 3
    wider = TINY_WM.encoder.hidden_size * 2
    other = build_encoder(EncoderConfig(**{**vars(TINY_WM.encoder), "hidden_size": wider}))
    cached_latents([h5], other, tmp_path / "cache", logs.append)
    assert len(logs) == 2  # another encoder -> another cache entry


@pytest.mark.slow
def test_wm_train_cli_end_to_end(tmp_path):
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=6, size=16))
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "world_model.training.train",
        f"data=[{h5}]",
        f"out_dir={out}",
        f"cache_dir={tmp_path / 'cache'}",
        "steps=4",
        "batch_size=4",
        "clip_len=3",
        "log_every=2",
        "val_every=2",
        "optim.warmup_steps=1",
        "optim.decay_steps=1",
        *TINY_WM_OVERRIDES,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    from world_model import load_world_model

    model = load_world_model(out / "world_model")
    assert model.num_tokens == 4
    assert model.cfg.predictor.action_std is not None  # input normalisation travels with it
    assert model.env_contract == SYNTHETIC_CONTRACT  # and so does the env it was trained on
    bad = subprocess.run(cmd + ["clip_len=1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "clip_len=1" in bad.stderr


def test_datasets_of_one_run_must_share_the_env_contract(tmp_path):
    episodes = synthetic_episodes(2, length=4, size=16)
    a = write_h5(tmp_path / "a.h5", episodes)
    assert dataset_contract([a, a]) == SYNTHETIC_CONTRACT
    faster = dataclasses.replace(SYNTHETIC_CONTRACT, control_hz=10.0)
    b = write_h5(tmp_path / "b.h5", episodes, faster)
    with pytest.raises(ValueError, match=r"different envs.*control_hz.*\(5\.0, 10\.0\)"):
        dataset_contract([a, b])

"""End-to-end (LeWM) world model: conv encoder + BatchNorm projector, pooled / token layouts,
action blocks, the joint loss, exact resume, checkpoint round trip, and the wm-train CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from tests.synthetic import synthetic_episodes
from world_model import load_world_model, save_world_model
from world_model.config import EncoderConfig, PredictorConfig, WorldModelConfig
from world_model.model.world_model import build_world_model
from world_model.training.config import OptimConfig, TrainConfig
from world_model.training.data import Clips
from world_model.training.lewm import LeWMLoss, load_frames
from world_model.training.lewm_trainer import LeWMTrainer

from .test_train import write_h5


def lewm_cfg(layout: str = "pooled", block: int = 2, history: int = 2) -> WorldModelConfig:
    return WorldModelConfig(
        encoder=EncoderConfig(
            backend="conv", latent_layout=layout, crop_size=16, hidden_size=16,
            conv_channels=[8, 16], proj_hidden=32,
        ),
        predictor=PredictorConfig(
            embed_dim=16, width=24, depth=1, num_heads=2, normalize_output=False
        ),
        action_block=block, history=history,
    )  # fmt: skip


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("layout", "tokens"), [("pooled", 1), ("tokens", 4)])
def test_layouts_and_block_rollout_shapes(layout, tokens):
    model = build_world_model(lewm_cfg(layout)).eval()
    assert (model.action_block, model.history, model.latent_layout) == (2, 2, layout)
    frames = torch.randint(0, 255, (2, 3, 3, 16, 16), dtype=torch.uint8)
    z = model.encode(frames)
    assert z.shape == (2, 3, tokens, 16)
    actions = torch.randn(2, 5, 4, 14)  # (E, S, H, k * 7)
    out = model.rollout(z[:, :2], torch.zeros(2, 2, 7), actions, torch.randn(2, 1, 14))
    assert out.shape == (2, 5, 4, tokens, 16) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="blocks of 2 x 7"):
        model.rollout(z[:, :1], torch.zeros(2, 1, 7), torch.randn(2, 5, 4, 7))


def test_imagined_state_advances_by_the_block_sum():
    model = build_world_model(lewm_cfg())
    acts = torch.randn(1, 1, 3, 14)
    summed = model.predictor.block_displacement(acts)
    assert torch.allclose(summed, acts[..., :7] + acts[..., 7:])


def test_block_clips_concatenate_actions_in_time_order():
    data = load_frames_synthetic(episodes=2, length=9)
    clips = Clips.build(data, torch.tensor([0, 1]), clip_len=3, block=2)
    assert len(clips) == 2 * (10 - 5 + 1)  # 10 frames per episode, a clip spans 5
    frames, actions, states = clips.batch(torch.tensor([1]))
    start = int(clips.starts[1])
    assert frames.shape == (1, 3, 3, 16, 16)
    assert torch.equal(states[0], data.states[[start, start + 2, start + 4]])
    expected = torch.cat([data.actions[start], data.actions[start + 1]])
    assert torch.equal(actions[0, 0], expected)


def test_episodes_shorter_than_a_clip_give_none():
    # Push-T's pusher ends episodes on success, some shorter than a clip's span.
    data = load_frames_synthetic(episodes=2, length=9)  # 10 frames each
    assert len(Clips.build(data, torch.tensor([0, 1]), clip_len=4, block=3)) == 2 * 1
    assert len(Clips.build(data, torch.tensor([0, 1]), clip_len=4, block=4)) == 0


def load_frames_synthetic(episodes: int, length: int):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        h5 = write_h5(Path(d) / "d.h5", synthetic_episodes(episodes, length=length, size=16))
        return load_frames([h5])


def test_config_rejects_bad_combinations():
    with pytest.raises(ValueError, match="normalize_output"):
        replace(lewm_cfg(), predictor=PredictorConfig(embed_dim=16, width=24, num_heads=2))
    assert lewm_cfg().objective == "lewm" and WorldModelConfig().objective == "frozen"
    with pytest.raises(ValueError, match="latent_layout"):
        EncoderConfig(latent_layout="grid")


def test_loss_trains_encoder_and_sigreg_counters_collapse(one_thread):
    model = build_world_model(lewm_cfg()).train()
    loss_fn = LeWMLoss(model, history=2, auto_steps=2, sigreg_weight=0.1, num_proj=32)
    frames = torch.randint(0, 255, (8, 4, 3, 16, 16), dtype=torch.uint8)
    loss, parts = loss_fn(frames, torch.randn(8, 3, 14), torch.randn(8, 4, 7))
    loss.backward()
    assert parts.shape == (4,) and torch.isfinite(loss)  # tf, sigreg, 2 steps
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def tiny_train_cfg(out_dir, data_path, **kw) -> TrainConfig:
    base = dict(
        data=[str(data_path)], out_dir=str(out_dir), world_model=lewm_cfg(), steps=6,
        batch_size=4, clip_len=4, auto_steps=2, sigreg_proj=16, val_fraction=0.25,
        log_every=2, val_every=3, optim=OptimConfig(warmup_steps=2, decay_steps=2),
    )  # fmt: skip
    return TrainConfig(**(base | kw))


def test_resume_after_kill_is_exact(tmp_path, one_thread):
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=8, size=16))
    straight = LeWMTrainer(tiny_train_cfg(tmp_path / "a", h5))
    straight.run()
    # the saved model carries the planner settings it was trained for (wm-eval applies them)
    saved = json.loads((tmp_path / "a" / "world_model" / "config.json").read_text())
    assert saved["extra"]["recommended_eval"] == {
        "planner.horizon": 2,  # auto_steps blocks
        "planner.num_samples": 128,
        "planner.iterations": 3,
        "agent.energy_reduce": "sum",
    }
    first = LeWMTrainer(tiny_train_cfg(tmp_path / "b", h5))
    while first.step < 3:
        first.train_step(*first.local_batch(first.step))
        first.step += 1
    first.checkpoint()
    del first
    resumed = LeWMTrainer(tiny_train_cfg(tmp_path / "b", h5))
    assert resumed.step == 3
    resumed.run()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert any(k.startswith("encoder.") and "running_var" in k for k in a)  # BN stats travel
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_encoder_from_trains_only_a_new_predictor(tmp_path, one_thread):
    """train.encoder_from: the source encoder comes back bit-identical (weights and BatchNorm
    statistics), the new predictor (here a different width, pixels-only) trains and lowers the
    loss, and the saved checkpoint plans with the source's encoder."""
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=8, size=16))
    src = LeWMTrainer(tiny_train_cfg(tmp_path / "src", h5))
    src.run()
    wm = replace(lewm_cfg(), predictor=replace(lewm_cfg().predictor, width=48, use_state=False))
    cfg = tiny_train_cfg(
        tmp_path / "pred", h5, world_model=wm, encoder_from=str(tmp_path / "src" / "world_model"),
        steps=30, optim=OptimConfig(lr=3e-3, warmup_steps=2, decay_steps=30),
    )  # fmt: skip
    tr = LeWMTrainer(cfg)
    first = tr.loss_fn(*tr.local_batch(0))[0].item()
    tr.run()
    last = tr.loss_fn(*tr.local_batch(0))[0].item()
    assert last < first
    saved = load_world_model(tmp_path / "pred" / "world_model")
    enc_a = load_world_model(tmp_path / "src" / "world_model").encoder.state_dict()
    enc_b = saved.encoder.state_dict()
    assert enc_a.keys() == enc_b.keys() and all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)
    assert saved.predictor.cfg.width == 48 and not saved.predictor.cfg.use_state
    with pytest.raises(ValueError, match="sigreg_within"):
        replace(cfg, sigreg_within=1.0).__post_init__()


def test_init_from_starts_at_a_saved_models_weights(tmp_path, one_thread):
    """train.init_from: step 0 holds the source's weights (BatchNorm statistics included),
    training moves on from there, and another architecture is refused by name."""
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=8, size=16))
    LeWMTrainer(tiny_train_cfg(tmp_path / "src", h5)).run()
    src = load_world_model(tmp_path / "src" / "world_model").state_dict()
    cont = LeWMTrainer(
        tiny_train_cfg(tmp_path / "cont", h5, init_from=str(tmp_path / "src" / "world_model"))
    )
    start = cont.model.state_dict()
    assert all(torch.equal(src[k], start[k]) for k in src)
    cont.run()
    assert not torch.equal(
        cont.model.state_dict()["encoder.projector.fc1.weight"], src["encoder.projector.fc1.weight"]
    )
    wide = replace(lewm_cfg(), predictor=replace(lewm_cfg().predictor, width=48))
    with pytest.raises(ValueError, match="architecture differs"):
        LeWMTrainer(
            tiny_train_cfg(
                tmp_path / "w",
                h5,
                world_model=wide,
                init_from=str(tmp_path / "src" / "world_model"),
            )
        )


def test_checkpoint_round_trip(tmp_path):
    model = build_world_model(lewm_cfg("tokens", block=3, history=3))
    save_world_model(model.eval(), tmp_path / "wm")
    loaded = load_world_model(tmp_path / "wm")
    assert (loaded.action_block, loaded.history, loaded.latent_layout) == (3, 3, "tokens")
    frames = torch.randint(0, 255, (1, 2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(model.encode(frames), loaded.encode(frames))
        acts = torch.randn(1, 2, 2, 21)
        z = model.encode(frames)
        past = torch.randn(1, 1, 21)
        ref = model.rollout(z, torch.zeros(1, 2, 7), acts, past)
        assert torch.allclose(ref, loaded.rollout(z, torch.zeros(1, 2, 7), acts, past), atol=1e-5)


@pytest.mark.slow
def test_wm_train_lewm_cli(tmp_path):
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=12, size=16))
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "world_model.training.train", "--config-name", "train_lewm",
        f"data=[{h5}]", f"out_dir={out}", "steps=4", "batch_size=4", "val_every=2",
        "log_every=2", "sigreg_proj=16", "optim.warmup_steps=1",
        "optim.decay_steps=1", "world_model.encoder.crop_size=16",
        "world_model.encoder.conv_channels=[8,16]", "world_model.encoder.proj_hidden=32",
        "world_model.encoder.hidden_size=16", "world_model.predictor.embed_dim=16",
        "world_model.predictor.width=24", "world_model.predictor.num_heads=2",
        "world_model.predictor.depth=1", "clip_len=6", "auto_steps=3",
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    model = load_world_model(out / "world_model")
    assert (model.action_block, model.history, model.latent_layout) == (2, 3, "pooled")
    assert not model.encoder.training


def _within_share(within_weight: float, seed: int) -> float:
    """Train a tiny encoder on clips whose background colour is constant within a clip and
    differs across clips, while a dot moves within each clip; return the share of the latents'
    variance that is within-clip (what the planner needs) after training."""
    torch.manual_seed(seed)
    model = build_world_model(lewm_cfg()).train()
    loss_fn = LeWMLoss(model, 2, 2, 0.1, 32, within_weight=within_weight)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        frames = (torch.rand(16, 1, 3, 1, 1, generator=gen) * 200).expand(16, 4, 3, 16, 16)
        frames = frames.clone()
        pos = torch.randint(0, 14, (16, 2), generator=gen)
        steps = torch.randint(-1, 2, (16, 3, 2), generator=gen)
        for t in range(4):
            p = (pos + (steps[:, :t].sum(1) if t else 0)).clamp(0, 14)
            for b in range(16):
                frames[b, t, :, p[b, 0] : p[b, 0] + 2, p[b, 1] : p[b, 1] + 2] = 255.0
        actions = torch.zeros(16, 3, 14)
        actions[..., :2] = steps.float()
        return frames, actions

    for _ in range(40):
        frames, actions = batch()
        loss, _ = loss_fn(frames, actions, torch.zeros(16, 4, 7))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z = model.eval().encode(batch()[0])[:, :, 0]  # (B, T, D)
        within = (z - z.mean(1, keepdim=True)).square().mean()
        return float(within / (z - z.mean((0, 1))).square().mean())


def test_within_clip_sigreg_makes_the_latent_follow_what_moves(one_thread):
    """train.sigreg_within: across clips the plain SIGReg can be met by the clip-constant
    background alone; the within-clip term gives the moving dot a larger share of the latent."""
    for seed in (0, 1):
        assert _within_share(1.0, seed) > 10 * _within_share(0.0, seed)

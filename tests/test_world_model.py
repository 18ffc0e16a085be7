"""WorldModel contract (docs/architecture.md) and checkpoint save / load / refusal."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from envs.common.contract import EnvContract
from world_model import (
    EncoderConfig,
    PredictorConfig,
    WorldModelConfig,
    build_world_model,
    load_world_model,
    save_world_model,
)

REPO = Path(__file__).resolve().parent.parent
CONTRACT = EnvContract(
    env_id="wm/PandaReach-v0",
    control_hz=5.0,
    action_low=(-0.075, -0.075, -0.075, 0.0, 0.0, 0.0, -1.0),
    action_high=(0.075, 0.075, 0.075, 0.0, 0.0, 0.0, 1.0),
    image_size=48,
    state_dim=7,
    action_dim=7,
)
CFG = WorldModelConfig(
    encoder=EncoderConfig(crop_size=32, patch_size=8, hidden_size=48, num_layers=2, num_heads=4),
    predictor=PredictorConfig(embed_dim=48, width=48, depth=2, num_heads=4),
)


@pytest.fixture(scope="module")
def model():
    return build_world_model(CFG, env_contract=CONTRACT).eval()


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return save_world_model(model, tmp_path_factory.mktemp("ck") / "wm", extra={"step": 7})


def test_contract_shapes(model):
    frames = torch.randint(0, 256, (2, 3, 3, 48, 48), dtype=torch.uint8)
    z = model.encode(frames)
    assert z.shape == (2, 3, model.num_tokens, model.latent_dim) == (2, 3, 4, 48)
    actions = torch.zeros(2, 5, 2, 7)
    with torch.no_grad():
        out = model.rollout(z, torch.zeros(2, 3, 7), actions, torch.zeros(2, 2, 7))
    assert out.shape == (2, 5, 2, 4, 48)
    goal = z[:, -1]  # (E, N, D)
    energy = model.energy(out, goal[:, None, None])
    assert energy.shape == (2, 5, 2)
    assert model.energy(goal, goal).abs().max() == 0
    assert torch.all(energy >= 0)
    with pytest.raises(ValueError, match="past_actions"):
        model.rollout(z, torch.zeros(2, 3, 7), actions, None)


def test_imagined_state_integrates_actions(model):
    """s_{t+1} = s_t + a_t: shifting the start state by a and the first action by -a
    leaves the second step's state input unchanged, so its prediction too (given step 1 input)."""
    z = torch.randn(1, 1, 4, 48)
    a = torch.randn(1, 1, 2, 7)
    with torch.no_grad():
        full = model.predictor.rollout(z, torch.zeros(1, 1, 7), a)
        # recompute step 2 by teacher forcing with the integrated state
        zs = torch.cat([z, full[:, 0, :1]], dim=1)  # (1, 2, N, D)
        states = torch.stack([torch.zeros(7), a[0, 0, 0]])[None]  # (1, 2, 7)
        tf = model.predictor(zs, a[:, 0], states)
    torch.testing.assert_close(tf[:, 1], full[:, 0, 1], atol=1e-5, rtol=1e-5)


def test_save_load_roundtrip(model, saved):
    loaded = load_world_model(saved, device="cpu")
    assert not any(p.requires_grad for p in loaded.parameters())
    frames = torch.randint(0, 256, (1, 2, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(loaded.encode(frames), model.encode(frames))
    z = model.encode(frames)
    a = torch.randn(1, 4, 3, 7)
    with torch.no_grad():
        ref = model.rollout(z, torch.zeros(1, 2, 7), a, torch.zeros(1, 1, 7))
        got = loaded.rollout(z, torch.zeros(1, 2, 7), a, torch.zeros(1, 1, 7))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["version"] == 2 and cfg["extra"] == {"step": 7}
    assert cfg["env"] == CONTRACT.to_dict() and loaded.env_contract == CONTRACT
    assert cfg["world_model"]["encoder"]["crop_size"] == model.cfg.encoder.crop_size


def copy_ckpt(src, dst):
    dst.mkdir()
    for name in ("config.json", "model.safetensors"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_refuses_mismatched_config(saved, tmp_path):
    bad = copy_ckpt(saved, tmp_path / "bad")
    cfg = json.loads((bad / "config.json").read_text())
    cfg["world_model"]["predictor"]["width"] = 64
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"shape .* \(mismatched config\)"):
        load_world_model(bad)
    cfg["world_model"]["predictor"]["width"] = 48
    cfg["world_model"]["predictor"]["depth"] = 3
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="lacks 12 tensors"):
        load_world_model(bad)
    cfg["world_model"]["predictor"]["depth"] = 2
    cfg["world_model"]["predictor"]["wdith"] = 2
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown config keys \\['wdith'\\]"):
        load_world_model(bad)
    cfg["world_model"]["predictor"].pop("wdith")
    cfg["version"] = 99
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="version 99"):
        load_world_model(bad)


def test_refuses_missing_tensor(saved, tmp_path):
    bad = copy_ckpt(saved, tmp_path / "bad")
    state = load_file(str(bad / "model.safetensors"))
    state.pop("predictor.predictor_proj.bias")
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(ValueError, match="predictor.predictor_proj.bias"):
        load_world_model(bad)


def test_refuses_corrupt_files(saved, tmp_path):
    bad = copy_ckpt(saved, tmp_path / "bad")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        load_world_model(bad)
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="corrupt"):
        load_world_model(bad)
    bad2 = copy_ckpt(saved, tmp_path / "bad2")
    (bad2 / "config.json").write_text("{ not json")
    with pytest.raises(ValueError, match="config.json is corrupt"):
        load_world_model(bad2)
    (bad2 / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_world_model(bad2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_world_model(tmp_path / "nowhere")


def test_overwrite_is_atomic(model, tmp_path):
    path = save_world_model(model, tmp_path / "wm")
    save_world_model(model, path, extra={"again": True})
    assert json.loads((path / "config.json").read_text())["extra"] == {"again": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wm"]


def test_version_1_loads_only_when_its_env_is_known(saved, tmp_path, monkeypatch):
    """v1 had no env section: the checkpoints once shipped as v1 (known by the hash of their
    weights; the retired *_tiny, copies may still be around) are upgraded, any other refused."""
    from world_model.checkpoint_upgrades import SHIPPED_V1

    v1 = copy_ckpt(saved, tmp_path / "v1")
    cfg = json.loads((v1 / "config.json").read_text())
    cfg.pop("env")
    (v1 / "config.json").write_text(json.dumps({**cfg, "version": 1}))
    with pytest.raises(ValueError, match="version-1 checkpoint.*Retrain it.*wm-train"):
        load_world_model(v1)
    digest = hashlib.sha256((v1 / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setitem(SHIPPED_V1, digest, "wm/PandaReach-v0")
    contract = load_world_model(v1).env_contract
    # The env section the upgrade writes: what the retired reach_tiny's v2 config.json held.
    assert contract == EnvContract.from_dict({
        "env_id": "wm/PandaReach-v0",
        "control_hz": 5.0,
        "action_low": [-0.075, -0.075, -0.075, 0.0, 0.0, 0.0, -1.0],
        "action_high": [0.075, 0.075, 0.075, 0.0, 0.0, 0.0, 1.0],
        "image_size": 64,
        "state_dim": 7,
        "action_dim": 7,
        "env_revision": 2,
        "workspace_low": [0.2, -0.45, 0.015],
        "workspace_high": [0.8, 0.45, 0.6],
    })  # fmt: skip


def test_contract_round_trip_and_checks():
    assert EnvContract.from_dict(CONTRACT.to_dict()) == CONTRACT
    with pytest.raises(ValueError, match="unknown keys \\['rate'\\]"):
        EnvContract.from_dict({**CONTRACT.to_dict(), "rate": 5})
    CONTRACT.check_compatible(replace(CONTRACT, action_high=(0.05,) * 3 + (0.0,) * 3 + (1.0,)))
    with pytest.raises(ValueError, match="control_hz=5.0.*control_hz=4.0"):
        CONTRACT.check_compatible(replace(CONTRACT, control_hz=4.0))
    with pytest.raises(ValueError, match="widened in dimension 3"):
        CONTRACT.check_compatible(replace(CONTRACT, action_high=(0.075,) * 4 + (0.0,) * 2 + (1.0,)))

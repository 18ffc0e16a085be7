"""Every encoder loading path gives the same latents as the model that was saved."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from world_model import EncoderConfig
from world_model.model.encoder import build_encoder, build_vjepa2_model
from world_model.model.official import hf_to_official_encoder

CFG = EncoderConfig(crop_size=32, patch_size=8, hidden_size=48, num_layers=2, num_heads=4)


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, 3, 40, 40), dtype=torch.uint8)  # (B, T, 3, H, W)


@pytest.fixture(scope="module")
def reference(frames):
    enc = build_encoder(CFG)
    return enc, enc(frames)


def test_shapes_and_normalisation(reference, frames):
    enc, z = reference
    assert z.shape == (2, 3, 4, 48)  # 32 / 8 = 4x4 tokens, pooled 2x2 -> 2x2 = 4
    torch.testing.assert_close(z.mean(-1), torch.zeros(2, 3, 4), atol=1e-5, rtol=0)
    assert not any(p.requires_grad for p in enc.parameters())
    # float input in [0, 1] and uint8 give the same latents
    torch.testing.assert_close(enc(frames.float() / 255.0), z)
    # frames are encoded one by one: batch composition does not matter
    torch.testing.assert_close(enc(frames[:1, 1:2]), z[:1, 1:2], atol=1e-5, rtol=1e-5)


def test_random_init_is_seeded(reference, frames):
    torch.testing.assert_close(build_encoder(CFG)(frames), reference[1])


def test_from_pretrained_folder(tmp_path, reference, frames):
    model = build_vjepa2_model(CFG)
    model.save_pretrained(tmp_path / "hf")
    enc = build_encoder(replace(CFG, backend="vjepa2", source=str(tmp_path / "hf")))
    torch.testing.assert_close(enc(frames), reference[1])


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_official_checkpoint_file(tmp_path, reference, frames, suffix):
    official = hf_to_official_encoder(build_vjepa2_model(CFG).encoder.state_dict())
    assert "blocks.0.attn.qkv.weight" in official and "patch_embed.proj.weight" in official
    path = tmp_path / f"vjepa2{suffix}"
    if suffix == ".pt":  # official layout: {"encoder": {"module.backbone.<key>": ...}, ...}
        wrapped = {f"module.backbone.{k}": v for k, v in official.items()}
        torch.save({"encoder": wrapped, "epoch": 3}, path)
    else:
        save_file({f"encoder.{k}": v.contiguous() for k, v in official.items()}, str(path))
    enc = build_encoder(replace(CFG, backend="vjepa2", source=str(path)))
    torch.testing.assert_close(enc(frames), reference[1])


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_encoder(replace(CFG, source=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_encoder(replace(CFG, source=str(tmp_path / "empty")))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        build_encoder(replace(CFG, source=str(bad)))
    torch.save({"something": {"x": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no 'encoder' state dict"):
        build_encoder(replace(CFG, source=str(tmp_path / "other.pt")))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="backend"):
        EncoderConfig(backend="resnet")
    with pytest.raises(ValueError, match="latent_pool"):
        EncoderConfig(crop_size=64, patch_size=8, latent_pool=3)

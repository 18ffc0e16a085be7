"""Official V-JEPA 2-AC checkpoint layout (`vjepa2-ac-vitg.pt`) at toy size: encoder mapped
onto VJEPA2Model, predictor loaded strictly, the whole world model rebuilt from one file."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from world_model import EncoderConfig, PredictorConfig, WorldModelConfig, load_official_world_model
from world_model.model.encoder import build_encoder, build_vjepa2_model
from world_model.model.official import hf_to_official_encoder
from world_model.model.predictor import ACPredictor

ENC = EncoderConfig(backend="vjepa2", crop_size=32, patch_size=16, hidden_size=48, num_layers=2,
                    num_heads=4, latent_pool=1)  # fmt: skip
PRED = PredictorConfig(embed_dim=48, width=48, depth=2, num_heads=4, grid_size=16,
                       rope_repeat_quirk=True, use_extrinsics=True, residual=False)  # fmt: skip
CFG = WorldModelConfig(encoder=ENC, predictor=PRED)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    torch.manual_seed(0)
    encoder = hf_to_official_encoder(build_vjepa2_model(ENC).encoder.state_dict())
    predictor = ACPredictor(PRED)
    path = tmp_path_factory.mktemp("official") / "vjepa2-ac-toy.pt"
    torch.save(
        {
            "encoder": {f"module.backbone.{k}": v for k, v in encoder.items()},
            "predictor": {f"module.{k}": v for k, v in predictor.state_dict().items()},
            "epoch": 315,
        },
        path,
    )
    return path, predictor


def test_loads_encoder_and_predictor(official_file):
    path, predictor = official_file
    model = load_official_world_model(path, CFG)
    frames = torch.randint(0, 256, (1, 2, 3, 32, 32), dtype=torch.uint8)
    z = model.encode(frames)
    assert z.shape == (1, 2, 4, 48)  # 32 / 16 = 2x2 tokens, no pooling (official)
    torch.testing.assert_close(z, build_encoder(replace(ENC, source=None))(frames))
    a = torch.randn(1, 3, 2, 7) * 0.05
    with torch.no_grad():
        expected = predictor.eval().rollout(z, torch.zeros(1, 2, 7), a, torch.zeros(1, 1, 7))
        got = model.rollout(z, torch.zeros(1, 2, 7), a, torch.zeros(1, 1, 7))
    torch.testing.assert_close(got, expected)


def test_predictor_loads_strictly(official_file, tmp_path):
    path, _ = official_file
    with pytest.raises(ValueError, match="predictor does not match config"):
        load_official_world_model(path, replace(CFG, predictor=replace(PRED, use_extrinsics=False)))
    state = torch.load(path, weights_only=True)
    state["predictor"].pop("module.predictor_norm.bias")
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="predictor_norm.bias"):
        load_official_world_model(tmp_path / "broken.pt", CFG)

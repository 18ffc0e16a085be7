"""V-JEPA 2-AC world model: frozen video encoder + action-conditioned latent predictor.

Public surface (docs/architecture.md): `WorldModel` (`encode`, `rollout`, `energy`),
`load_world_model`, `save_world_model`, `build_world_model`, `build_predictor`.
"""

from world_model.checkpoint import load_official_world_model, load_world_model, save_world_model
from world_model.config import EncoderConfig, PredictorConfig, WorldModelConfig
from world_model.model.predictor import ACPredictor, build_predictor
from world_model.model.world_model import WorldModel, build_world_model

__all__ = [
    "ACPredictor",
    "EncoderConfig",
    "PredictorConfig",
    "WorldModel",
    "WorldModelConfig",
    "build_predictor",
    "build_world_model",
    "load_official_world_model",
    "load_world_model",
    "save_world_model",
]

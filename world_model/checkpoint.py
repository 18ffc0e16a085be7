"""World-model checkpoint directories: `model.safetensors` + versioned `config.json`.

The encoder weights travel inside the checkpoint, so a directory alone reproduces the latents
the predictor was trained on. Loading refuses, with a message naming the problem, a wrong
format or version, an unknown config key, a missing or unexpected tensor, a tensor whose shape
disagrees with the config, a NaN or inf weight, and unreadable files. Writes are atomic (temp
dir + rename). `read_config` and `read_weights` are the checks every load path goes through
(inference here, training resume in `world_model.training.train_state`).

config.json is parsed once per use: `read_config` returns a `CheckpointConfig`, and the loaders
(`load_world_model`, the heads' `load_extra`) take it in place of a path, so a process that
reads a checkpoint's settings and then loads its weights and heads parses the file once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save
from transformers import VJEPA2Config
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

from envs.common.contract import EnvContract
from envs.data.storage import atomic_dir, write_file
from world_model.checkpoint_schema import (
    CheckpointConfigError,
    CorruptCheckpointError,
    read_checkpoint_json,
)
from world_model.config import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    WorldModelConfig,
    dataclass_from_dict,
    to_dict,
)
from world_model.model.conv_encoder import ConvEncoder
from world_model.model.encoder import FrozenEncoder, build_encoder
from world_model.model.world_model import WorldModel, predictor_for

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def world_model_config_json(model: WorldModel, extra: dict | None = None) -> dict[str, Any]:
    """The versioned `config.json` payload."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "world_model": to_dict(model.cfg),
        # the ViT architecture; null for the `conv` encoder (its config section says it all)
        "encoder_hf_config": (
            model.encoder.hf_config.to_dict() if isinstance(model.encoder, FrozenEncoder) else None
        ),
        "latent": {"num_tokens": model.num_tokens, "dim": model.latent_dim},
        # The env the model was trained on (envs/common/contract.py); null for a model built without
        # data, which the agent refuses to drive an env with.
        "env": model.env_contract.to_dict() if model.env_contract is not None else None,
        "extra": extra or {},
    }


def write_world_model(model: WorldModel, directory: Path, extra: dict | None = None) -> None:
    """Write the two files into an existing directory (non-atomic building block)."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # Serialised in memory, written by Python: a full disk then surfaces as errno 28.
    write_file(Path(directory) / WEIGHTS, save(state, metadata={"format": CHECKPOINT_FORMAT}))
    payload = world_model_config_json(model, extra)
    write_file(Path(directory) / CONFIG, json.dumps(payload, indent=2, default=str).encode())


def save_world_model(model: WorldModel, path: str | Path, extra: dict | None = None) -> Path:
    """Save `model` as a checkpoint directory `path` atomically; `extra` goes to config.json."""
    atomic_dir(Path(path), lambda tmp: write_world_model(model, tmp, extra))
    return Path(path)


@dataclass(frozen=True)
class CheckpointConfig:
    """A checkpoint directory's `config.json`, parsed, upgraded and validated (`read_config`)."""

    path: Path
    """The checkpoint directory."""
    world_model: WorldModelConfig
    """Architecture, action block, history and latent layout."""
    encoder_hf_config: VJEPA2Config | None
    """The ViT encoder's architecture; None for the `conv` encoder."""
    env: EnvContract | None
    """The env the model was trained on (None when trained without a dataset)."""
    extra: dict[str, Any]
    """Free-form entries: training provenance, recommended eval settings, heads."""


def read_config(checkpoint: str | Path | CheckpointConfig) -> CheckpointConfig:
    """Parse, upgrade and validate `checkpoint/config.json` (an already read `CheckpointConfig`
    passes through). The schema (`world_model.checkpoint_schema`) is checked first; a value it
    lets through that a config's own checks refuse is named with the file."""
    if isinstance(checkpoint, CheckpointConfig):
        return checkpoint
    path = Path(checkpoint)
    payload = read_checkpoint_json(path)
    cfg_path = path / CONFIG
    try:
        cfg = dataclass_from_dict(WorldModelConfig, dict(payload["world_model"]), "world_model")
        hf_dict = payload["encoder_hf_config"]
        hf_config = None if hf_dict is None else VJEPA2Config(**hf_dict)
        env = payload["env"]
        env_contract = EnvContract.from_dict(env) if env is not None else None
    except (TypeError, ValueError) as exc:
        raise CheckpointConfigError(f"{cfg_path}: {exc}") from exc
    return CheckpointConfig(path, cfg, hf_config, env_contract, payload["extra"])


def check_tensors(weights: Path, expected: dict[str, torch.Size]) -> None:
    """Compare the safetensors header with the modules the config builds."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            found = {k: torch.Size(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{weights} is corrupt or not a safetensors file: {exc}"
        ) from exc
    missing = sorted(set(expected) - set(found))
    if missing:
        raise ValueError(
            f"{weights} lacks {len(missing)} tensors the config needs, e.g. {missing[:5]}"
        )
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise ValueError(
            f"{weights} has {len(unexpected)} tensors the config does not build, e.g. "
            f"{unexpected[:5]} (config.json and weights mismatch)"
        )
    for key, shape in expected.items():
        if found[key] != shape:
            raise ValueError(
                f"tensor {key} has shape {tuple(found[key])} in {weights.name} but config.json "
                f"implies {tuple(shape)} (mismatched config)"
            )


def check_finite(state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Refuse NaN/inf in any floating tensor, naming it: one such weight makes every latent
    NaN, every plan's energy NaN, and the agent silently holds still."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CorruptCheckpointError(
                f"{source}: tensor {name!r} holds {bad} non-finite values (NaN/inf) of "
                f"{tensor.numel()}; refusing the checkpoint (use an earlier one or retrain)"
            )


def read_weights(weights: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a `model.safetensors` whose names start with `prefix`, checked finite."""
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing")
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}  # noqa: SIM118
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{weights} is corrupt (tensor data unreadable): {exc}"
        ) from exc
    check_finite(state, weights)
    return state


def load_world_model(
    checkpoint: str | Path | CheckpointConfig, device: str | torch.device = "cpu"
) -> WorldModel:
    """Load a checkpoint directory for inference: eval mode, no gradients, on `device`.

    The one load path. `checkpoint` is the directory, or its config already read
    (`read_config`), which is then not parsed again. Older config versions go through
    `UPGRADES`; the env the model was trained on is `model.env_contract` (None when it was
    trained without a dataset).
    """
    if not isinstance(checkpoint, CheckpointConfig):
        path = Path(checkpoint)
        if not path.is_dir():
            what = "is a file, not" if path.exists() else "does not exist: no"
            raise FileNotFoundError(f"{path} {what} a world-model checkpoint directory")
    stored = read_config(checkpoint)
    path, cfg, hf_config = stored.path, stored.world_model, stored.encoder_hf_config
    hf_config = copy.deepcopy(hf_config)  # set below; the caller's config stays as read
    weights = path / WEIGHTS
    enc_cfg = replace(cfg.encoder, source=None, device=str(device))
    with torch.device("meta"):
        if hf_config is None:
            encoder = ConvEncoder(enc_cfg)
        else:
            hf_config._attn_implementation = "sdpa"  # same kernel as VJEPA2Model(config) builds
            backbone = VJEPA2Encoder(hf_config)
        predictor = predictor_for(cfg)
    if hf_config is not None:  # wrapped off "meta": its normalisation constants are real
        encoder = FrozenEncoder(backbone, hf_config, enc_cfg)
    model = WorldModel(encoder, predictor, replace(cfg, encoder=enc_cfg), stored.env)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing")
    check_tensors(weights, {k: v.shape for k, v in model.state_dict().items()})
    state = read_weights(weights)
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device)
    model.encoder.to(dtype=getattr(torch, enc_cfg.dtype))
    model.encoder.mean, model.encoder.std = model.encoder.mean.float(), model.encoder.std.float()
    return model.eval().requires_grad_(False)


def load_official_world_model(
    path: str | Path, cfg: WorldModelConfig, device: str | torch.device = "cpu"
) -> WorldModel:
    """World model from an official V-JEPA 2-AC file (`vjepa2-ac-vitg.pt`: `encoder` and
    `predictor` state dicts, weights only). `cfg` gives what the tensors do not say (heads, crop,
    normalisation; e.g. `configs/world_model/vjepa2_vitg.yaml`); the predictor loads strictly."""
    from world_model.model.official import load_official_predictor

    enc_cfg = replace(cfg.encoder, backend="vjepa2", source=str(path), device=str(device))
    encoder = build_encoder(enc_cfg)
    predictor = load_official_predictor(path, cfg.predictor).to(device)
    check_finite({**encoder.state_dict(), **predictor.state_dict()}, path)
    return (
        WorldModel(encoder, predictor, replace(cfg, encoder=enc_cfg)).eval().requires_grad_(False)
    )

"""Official V-JEPA 2 / V-JEPA 2-AC checkpoint files (facebookresearch/vjepa2 layout).

Files are read with `safetensors` or `torch.load(weights_only=True)` only: no arbitrary
unpickling. The official encoder (`patch_embed`, `blocks.{i}.attn.qkv`, `norm`) is mapped
onto transformers' `VJEPA2Encoder` (`embeddings`, `layer.{i}.attention.{query,key,value}`,
`layernorm`); the official predictor loads strictly into `ACPredictor`.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor
from transformers import VJEPA2Config
from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

from world_model.config import EncoderConfig, PredictorConfig
from world_model.model.predictor import ACPredictor

PREFIXES = ("module.", "backbone.")


def read_state_file(path: str | Path) -> dict:
    """Tensors of a `.safetensors` file or a torch checkpoint (weights only), or a ValueError
    naming the file when it is unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # report which file is bad, keep the original cause
        raise ValueError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc


def strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop DDP / wrapper prefixes (`module.`, `backbone.`) from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith(PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def section(state: dict, name: str, path: Path) -> dict[str, Tensor]:
    """The `name` state dict of an official checkpoint (nested dict or `name.`-prefixed keys)."""
    if isinstance(state.get(name), dict):
        return strip_prefixes(state[name])
    flat = {k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")}
    if flat:
        return strip_prefixes(flat)
    if name == "encoder" and "patch_embed.proj.weight" in strip_prefixes(
        {k: v for k, v in state.items() if isinstance(v, Tensor)}
    ):
        return strip_prefixes(state)
    raise ValueError(f"{path} has no '{name}' state dict (top-level keys: {sorted(state)[:8]})")


def official_to_hf_encoder(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename official encoder keys to `VJEPA2Encoder` keys; the fused qkv is split in three."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("patch_embed."):
            out["embeddings.patch_embeddings." + key[len("patch_embed.") :]] = value
        elif key.startswith("norm."):
            out["layernorm." + key[len("norm.") :]] = value
        elif m := re.fullmatch(r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", key):
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                out[f"layer.{m[1]}.attention.{part}.{m[2]}"] = chunk
        elif m := re.fullmatch(r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", key):
            out[f"layer.{m[1]}.attention.proj.{m[2]}"] = value
        elif m := re.fullmatch(
            r"blocks\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)", key
        ):
            out[f"layer.{m[1]}.{m[2]}.{m[3]}"] = value
        else:
            raise ValueError(f"unexpected key {key!r} in the official encoder state dict")
    return out


def hf_to_official_encoder(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of `official_to_hf_encoder` (tests write official-format files with it)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("embeddings.patch_embeddings."):
            out["patch_embed." + key[len("embeddings.patch_embeddings.") :]] = value
        elif key.startswith("layernorm."):
            out["norm." + key[len("layernorm.") :]] = value
        elif m := re.fullmatch(r"layer\.(\d+)\.attention\.query\.(weight|bias)", key):
            parts = [state[f"layer.{m[1]}.attention.{p}.{m[2]}"] for p in ("query", "key", "value")]
            out[f"blocks.{m[1]}.attn.qkv.{m[2]}"] = torch.cat(parts, dim=0)
        elif re.fullmatch(r"layer\.(\d+)\.attention\.(key|value)\.(weight|bias)", key):
            continue
        elif m := re.fullmatch(r"layer\.(\d+)\.attention\.proj\.(weight|bias)", key):
            out[f"blocks.{m[1]}.attn.proj.{m[2]}"] = value
        elif m := re.fullmatch(r"layer\.(\d+)\.(.+)", key):
            out[f"blocks.{m[1]}.{m[2]}"] = value
        else:
            raise ValueError(f"unexpected VJEPA2Encoder key {key!r}")
    return out


def hf_config_from_official(state: dict[str, Tensor], cfg: EncoderConfig) -> VJEPA2Config:
    """Architecture read off the tensor shapes; heads and crop size come from `cfg`."""
    proj = state["patch_embed.proj.weight"]  # (D, 3, tubelet, p, p)
    hidden, _, tubelet, patch, _ = proj.shape
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    mlp_hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
    mlp_ratio = mlp_hidden / hidden
    if int(hidden * mlp_ratio) != mlp_hidden:  # guard float truncation (ViT-g: 6144 / 1408)
        mlp_ratio += 1e-9
    if hidden % cfg.num_heads:
        raise ValueError(f"encoder.num_heads={cfg.num_heads} does not divide width {hidden}")
    return VJEPA2Config(
        patch_size=patch,
        crop_size=cfg.crop_size,
        frames_per_clip=max(tubelet, 2),
        tubelet_size=tubelet,
        hidden_size=hidden,
        num_attention_heads=cfg.num_heads,
        num_hidden_layers=depth,
        mlp_ratio=mlp_ratio,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
    )


def load_official_encoder(
    path: str | Path, cfg: EncoderConfig
) -> tuple[VJEPA2Encoder, VJEPA2Config]:
    """`VJEPA2Encoder` from an official file's `encoder` state dict, loaded strictly."""
    path = Path(path)
    state = section(read_state_file(path), "encoder", path)
    hf_config = hf_config_from_official(state, cfg)
    hf_config._attn_implementation = "sdpa"  # same kernel as VJEPA2Model(config) builds
    with torch.device("meta"):
        encoder = VJEPA2Encoder(hf_config)
    missing, unexpected = encoder.load_state_dict(
        official_to_hf_encoder(state), strict=False, assign=True
    )
    if missing or unexpected:
        raise ValueError(
            f"{path}: encoder tensors missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return encoder.eval(), hf_config


def load_official_predictor(path: str | Path, cfg: PredictorConfig) -> ACPredictor:
    """`ACPredictor` from an official file's `predictor` state dict, loaded strictly."""
    path = Path(path)
    state = section(read_state_file(path), "predictor", path)
    with torch.device("meta"):
        predictor = ACPredictor(cfg)
    try:
        predictor.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: predictor does not match config: {exc}") from exc
    return predictor

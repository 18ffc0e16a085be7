"""AC predictor: block-causal mask, causality, KV cache == recompute, official key set, RoPE."""

from __future__ import annotations

import torch

from world_model import PredictorConfig, build_predictor
from world_model.model.predictor import ACPredictor, block_causal_mask
from world_model.model.rope import rope_tables

E, S, TC, H, N, D = 2, 3, 2, 4, 16, 24


def tiny_predictor(**kw) -> ACPredictor:
    torch.manual_seed(0)
    cfg = PredictorConfig(embed_dim=D, width=48, depth=2, num_heads=4, **kw)
    return ACPredictor(cfg).eval()


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(E, TC, N, D, generator=g)
    states = torch.randn(E, TC, 7, generator=g)
    actions = torch.randn(E, S, H, 7, generator=g)
    past = torch.randn(E, TC - 1, 7, generator=g)
    return z, states, actions, past


def test_block_causal_mask():
    m = block_causal_mask(3, 2)
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(m, expected)


def test_later_action_never_changes_earlier_prediction():
    p = tiny_predictor()
    z = torch.randn(2, 4, N, D)
    states, actions = torch.randn(2, 4, 7), torch.randn(2, 4, 7)
    with torch.no_grad():
        base = p(z, actions, states)
        for t in range(4):
            changed = actions.clone()
            changed[:, t] += 5.0
            other = p(z, changed, states)
            torch.testing.assert_close(other[:, :t], base[:, :t], rtol=0, atol=1e-6)
            assert (other[:, t] - base[:, t]).abs().max() > 1e-3


def test_rollout_causality_over_horizon():
    p = tiny_predictor()
    z, states, actions, past = inputs()
    with torch.no_grad():
        base = p.rollout(z, states, actions, past)
        changed = actions.clone()
        changed[:, :, 2] += 3.0
        other = p.rollout(z, states, changed, past)
    torch.testing.assert_close(other[:, :, :2], base[:, :, :2], rtol=0, atol=1e-6)
    assert (other[:, :, 2:] - base[:, :, 2:]).abs().max() > 1e-3


def test_cached_rollout_equals_full_recompute():
    for quirk in (False, True):
        p = tiny_predictor(rope_repeat_quirk=quirk, grid_size=16)
        z, states, actions, past = inputs()
        with torch.no_grad():
            cached = p.rollout(z, states, actions, past, use_cache=True)
            full = p.rollout(z, states, actions, past, use_cache=False)
        assert cached.shape == (E, S, H, N, D)
        torch.testing.assert_close(cached, full, rtol=1e-4, atol=1e-4)
        # single-frame context (no past actions) too
        with torch.no_grad():
            one = p.rollout(z[:, -1:], states[:, -1:], actions, None)
            one_full = p.rollout(z[:, -1:], states[:, -1:], actions, None, use_cache=False)
        torch.testing.assert_close(one, one_full, rtol=1e-4, atol=1e-4)


def test_rollout_samples_are_independent():
    """Each of the S samples equals a rollout of that sample alone (no cross-talk)."""
    p = tiny_predictor()
    z, states, actions, past = inputs()
    with torch.no_grad():
        batch = p.rollout(z, states, actions, past)
        alone = p.rollout(z, states, actions[:, 1:2], past)
    torch.testing.assert_close(batch[:, 1:2], alone, rtol=1e-5, atol=1e-5)


def test_rope_quirk_layout():
    pos = torch.tensor([[1.0, 0.0, 0.0]])
    cos_q, _ = rope_tables(pos, 64, repeat_quirk=True)
    cos_i, _ = rope_tables(pos, 64, repeat_quirk=False)
    assert cos_q.shape == (1, 60)
    half = 10  # 20 time dims: quirk repeats the block, the intended layout interleaves
    torch.testing.assert_close(cos_q[0, :half], cos_q[0, half:20])
    torch.testing.assert_close(cos_i[0, 0:20:2], cos_i[0, 1:20:2])
    torch.testing.assert_close(cos_q[0, 20:], torch.ones(40))  # row/col 0 -> identity


def official_predictor_shapes() -> dict[str, tuple[int, ...]]:
    """The official vjepa2-ac-vitg predictor (ANCHORS.md): 24 x 1024, ViT-g 1408 latents."""
    w, g = 1024, 1408
    shapes = {
        "predictor_embed.weight": (w, g),
        "predictor_embed.bias": (w,),
        "action_encoder.weight": (w, 7),
        "action_encoder.bias": (w,),
        "state_encoder.weight": (w, 7),
        "state_encoder.bias": (w,),
        "extrinsics_encoder.weight": (w, 6),
        "extrinsics_encoder.bias": (w,),
        "predictor_norm.weight": (w,),
        "predictor_norm.bias": (w,),
        "predictor_proj.weight": (g, w),
        "predictor_proj.bias": (g,),
    }
    for i in range(24):
        b = f"predictor_blocks.{i}."
        shapes |= {
            b + "norm1.weight": (w,),
            b + "norm1.bias": (w,),
            b + "attn.qkv.weight": (3 * w, w),
            b + "attn.qkv.bias": (3 * w,),
            b + "attn.proj.weight": (w, w),
            b + "attn.proj.bias": (w,),
            b + "norm2.weight": (w,),
            b + "norm2.bias": (w,),
            b + "mlp.fc1.weight": (4 * w, w),
            b + "mlp.fc1.bias": (4 * w,),
            b + "mlp.fc2.weight": (w, 4 * w),
            b + "mlp.fc2.bias": (w,),
        }
    return shapes


def test_official_predictor_keys_and_shapes_on_meta():
    p = build_predictor("vjepa2-ac-vitg", device="meta")
    got = {k: tuple(v.shape) for k, v in p.state_dict().items()}
    assert got == official_predictor_shapes()
    assert 300e6 < sum(v.numel() for v in p.parameters()) < 310e6
    assert p.cfg.rope_repeat_quirk and p.cfg.grid_size == 16


def test_use_state_false_ignores_the_state_but_keeps_the_layout():
    """Pixels-only predictor (LeWM): the state cannot leak arm information past the latent,
    while the parameter set stays the same as the state-fed one (same token layout)."""
    z, states, actions, past = inputs()
    with_state, without = tiny_predictor(), tiny_predictor(use_state=False)
    assert with_state.state_dict().keys() == without.state_dict().keys()
    with torch.no_grad():
        a = without.rollout(z, states, actions, past)
        b = without.rollout(z, states + 10.0, actions, past)
        c = with_state.rollout(z, states + 10.0, actions, past)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (c - with_state.rollout(z, states, actions, past)).abs().max() > 1e-3

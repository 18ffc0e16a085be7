"""Object-slot latents (`encoder.latent_layout=slots`, C-JEPA): Slot Attention shapes, a
predictor that is equivariant to the order of the slots, exact cached rollouts, object-level
masking, the order-free Chamfer planning energy, and a tiny end-to-end training run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from agent.config import AgentConfig
from agent.mpc import MPCAgent
from planners import CEMConfig, make_planner
from tests.synthetic import synthetic_episodes
from world_model import load_world_model, save_world_model
from world_model.config import EncoderConfig, WorldModelConfig
from world_model.model.slots import chamfer_distance, random_slot_mask
from world_model.model.world_model import build_world_model
from world_model.training.config import TrainConfig
from world_model.training.lewm import LeWMLoss
from world_model.training.lewm_trainer import LeWMTrainer

from .test_lewm import lewm_cfg, one_thread, tiny_train_cfg  # noqa: F401 (fixture)
from .test_train import write_h5

K = 3


def slot_cfg(num_slots: int = K) -> WorldModelConfig:
    cfg = lewm_cfg("slots", block=2, history=2)
    return replace(cfg, encoder=replace(cfg.encoder, num_slots=num_slots))


def test_slot_latents_have_one_token_per_slot():
    model = build_world_model(slot_cfg()).eval()
    assert (model.latent_layout, model.num_tokens) == ("slots", K)
    frames = torch.randint(0, 255, (2, 3, 3, 16, 16), dtype=torch.uint8)
    z = model.encode(frames)
    assert z.shape == (2, 3, K, 16) and torch.isfinite(z).all()
    assert torch.equal(z, model.encode(frames))  # learned init: deterministic at eval
    actions = torch.randn(2, 5, 4, 14)  # (E, S, H, k * 7)
    out = model.rollout(z[:, :2], torch.zeros(2, 2, 7), actions, torch.randn(2, 1, 14))
    assert out.shape == (2, 5, 4, K, 16) and torch.isfinite(out).all()


def test_config_refuses_slots_outside_the_conv_encoder_and_masking_without_slots():
    with pytest.raises(ValueError, match="slots needs encoder.backend=conv"):
        EncoderConfig(latent_layout="slots")
    with pytest.raises(ValueError, match="num_slots"):
        replace(slot_cfg().encoder, num_slots=0).__post_init__()
    with pytest.raises(ValueError, match="slot_mask_ratio"):
        TrainConfig(world_model=lewm_cfg("tokens"), slot_mask_ratio=0.5)
    with pytest.raises(ValueError, match="slot_mask_ratio"):
        TrainConfig(world_model=slot_cfg(), slot_mask_ratio=1.0)
    with pytest.raises(ValueError, match="latent_layout=slots"):
        LeWMLoss(build_world_model(lewm_cfg("tokens")), 2, 2, 0.1, 16, slot_mask_ratio=0.5)


def test_predictor_is_equivariant_to_slot_order():
    """Slots carry no position: permuting the K input slots permutes the predictions."""
    pred = build_world_model(slot_cfg(4)).predictor.eval()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 4, 16, generator=gen)
    actions, states = torch.randn(2, 3, 14, generator=gen), torch.randn(2, 3, 7, generator=gen)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        out = pred(z, actions, states)
        out_perm = pred(z[:, :, perm], actions, states)
    assert torch.allclose(out[:, :, perm], out_perm, atol=1e-5)


def test_cached_rollout_equals_recompute():
    pred = build_world_model(slot_cfg()).predictor.eval()
    gen = torch.Generator().manual_seed(1)
    z_ctx = torch.randn(2, 2, K, 16, generator=gen)
    states = torch.randn(2, 2, 7, generator=gen)
    actions = torch.randn(2, 3, 4, 14, generator=gen)
    past = torch.randn(2, 1, 14, generator=gen)
    with torch.no_grad():
        cached = pred.rollout(z_ctx, states, actions, past, use_cache=True)
        full = pred.rollout(z_ctx, states, actions, past, use_cache=False)
    assert torch.allclose(cached, full, atol=1e-5)


def test_masking_changes_inputs_only_at_masked_slots_after_the_anchor():
    pred = build_world_model(slot_cfg(4)).predictor
    with torch.no_grad():
        pred.mask_token.normal_()  # zero-initialised; any value must stay local
    torch.manual_seed(0)
    mask = random_slot_mask(5, 3, 4, 0.5, "cpu")  # (B, T, K)
    assert not mask[:, 0].any() and (mask.sum(-1)[:, 1:] == 2).all()
    assert torch.equal(mask[:, 1], mask[:, 2])  # the same objects stay masked in a clip
    z = torch.randn(5, 3, 4, 16)
    actions, states = torch.randn(5, 3, 14), torch.randn(5, 3, 7)
    with torch.no_grad():
        plain = pred._tokens(z, actions, states).unflatten(-2, (3, -1))  # (B, T, 2 + K, C)
        masked_z = pred.mask_slots(z, mask)
        masked = pred._tokens(masked_z, actions, states, mask).unflatten(-2, (3, -1))
    changed = (plain != masked).any(-1)  # (B, T, 2 + K)
    assert not changed[:, :, :2].any()  # action and state tokens untouched
    assert torch.equal(changed[:, :, 2:], mask)
    # a masked input carries the slot's identity anchor (step 0), not its current state
    assert torch.equal(masked_z[mask], z[:, :1].expand_as(z)[mask])
    z_alt = z.clone()
    z_alt[mask] += 1.0  # the hidden states may change freely: the predictions do not see them
    with torch.no_grad():
        assert torch.allclose(pred(z, actions, states, mask), pred(z_alt, actions, states, mask))


def test_chamfer_energy_ignores_slot_order_and_is_zero_at_the_goal():
    model = build_world_model(slot_cfg(4))
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(2, 5, 3, 4, 16, generator=gen)  # (E, S, H, K, D)
    goal = torch.randn(2, 4, 16, generator=gen)
    energy = model.energy(z, goal[:, None, None])
    assert energy.shape == (2, 5, 3) and (energy > 0).all()
    shuffled = model.energy(z, goal[:, None, None, [3, 1, 0, 2]])
    assert torch.allclose(energy, shuffled)
    assert torch.allclose(model.energy(z[..., [1, 0, 3, 2], :], goal[:, None, None]), energy)
    assert model.energy(goal, goal[:, [2, 3, 0, 1]]).abs().max() == 0
    # well-separated slots, one off by 1 in every channel: that pair pays 1 both ways, the
    # other three pairs 0, so the mean is 1/4
    apart = 10.0 * torch.arange(4.0)[:, None].expand(4, 16)  # (K, D)
    near = apart.clone()
    near[0] += 1.0
    assert torch.allclose(chamfer_distance(near, apart[[2, 0, 3, 1]]), torch.tensor(0.25))


def test_tiny_training_with_masking_lowers_the_loss_and_round_trips(tmp_path, one_thread):  # noqa: F811
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=8, size=16))
    cfg = tiny_train_cfg(
        tmp_path / "run", h5, world_model=slot_cfg(), steps=10, slot_mask_ratio=0.5
    )
    tr = LeWMTrainer(cfg)
    assert tr.loss_fn.slot_mask_ratio == 0.5
    torch.manual_seed(0)
    first = tr.loss_fn(*tr.local_batch(0))[0].item()
    tr.run()
    loaded = load_world_model(tmp_path / "run" / "world_model")
    assert (loaded.latent_layout, loaded.num_tokens, loaded.predictor.slots) == ("slots", K, True)
    save_world_model(loaded, tmp_path / "again")
    again = load_world_model(tmp_path / "again")
    frames = torch.randint(0, 255, (1, 2, 3, 16, 16), dtype=torch.uint8)
    acts, past = torch.randn(1, 2, 3, 14), torch.randn(1, 1, 14)
    with torch.no_grad():
        z = tr.model.eval().encode(frames)
        assert torch.equal(z, loaded.encode(frames)) and torch.equal(z, again.encode(frames))
        ref = tr.model.rollout(z, torch.zeros(1, 2, 7), acts, past)
        out = again.rollout(z, torch.zeros(1, 2, 7), acts, past)
    assert torch.allclose(ref, out, atol=1e-5)
    tr.model.train()
    torch.manual_seed(0)
    last = tr.loss_fn(*tr.local_batch(0))[0].item()
    assert last < first


def test_mpc_agent_plans_on_slot_latents():
    """The agent's energy goes through `WorldModel.energy` (Chamfer for slots) unchanged."""
    low = np.full(7, -0.05, np.float32)
    model = build_world_model(slot_cfg()).eval()
    planner = make_planner(CEMConfig(num_samples=16, iterations=2, horizon=2, num_elites=4),
                           np.tile(low, 2), np.tile(-low, 2))  # fmt: skip
    agent = MPCAgent(model, planner, low, -low, AgentConfig())
    rng = np.random.default_rng(0)
    agent.set_goal(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    action = agent.act(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), np.zeros(7, np.float32))
    assert action.shape == (7,) and np.isfinite(agent.stats.energy)


def test_resume_with_slot_masking_is_exact(tmp_path, one_thread):  # noqa: F811
    """The object masks come from the torch RNG that checkpoints carry: a resumed run draws the
    same masks and ends bit-identical."""
    h5 = write_h5(tmp_path / "d.h5", synthetic_episodes(4, length=8, size=16))

    def cfg(out: str) -> TrainConfig:
        return tiny_train_cfg(tmp_path / out, h5, world_model=slot_cfg(), slot_mask_ratio=0.5)

    straight = LeWMTrainer(cfg("a"))
    straight.run()
    first = LeWMTrainer(cfg("b"))
    while first.step < 3:
        first.train_step(*first.local_batch(first.step))
        first.step += 1
    first.checkpoint()
    del first
    resumed = LeWMTrainer(cfg("b"))
    assert resumed.step == 3
    resumed.run()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert "predictor.mask_token" in a and all(torch.equal(a[k], b[k]) for k in a)

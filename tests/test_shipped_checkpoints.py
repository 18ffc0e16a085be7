"""Every checkpoint in checkpoints/ loads with today's code, and so do older files that still
record options deleted since (world_model/config.py `RETIRED_KEYS`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.checkpoint import read_checkpoint
from agent.config import AgentConfig, EnvSection, with_recommended
from planners import CEMConfig
from world_model import load_world_model
from world_model.heads.actor import load_actor
from world_model.heads.reachability import load_head

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = sorted((ROOT / "checkpoints").glob("*/config.json"))


@pytest.mark.parametrize("config", CHECKPOINTS, ids=lambda p: p.parent.name)
def test_shipped_checkpoint_loads_with_its_head_and_settings(config: Path) -> None:
    checkpoint = config.parent
    info = read_checkpoint(checkpoint)
    model = load_world_model(checkpoint)
    assert model.env_contract is not None and model.env_contract == info.env
    assert model.action_block == info.action_block
    load_head(checkpoint)  # None when it ships none
    agent, planner, _ = with_recommended(AgentConfig(), CEMConfig(), info.recommended, set())
    assert planner.select == "best"  # the default, not per model
    if planner.proposal == "none":
        assert agent.stay_if_better
    else:  # Direct: the model's energy must not veto the head's plan (docs/results.md)
        actor = load_actor(checkpoint)
        assert actor is not None and actor.block_dim == 7 * model.action_block
        assert actor.latent_dim == model.latent_dim


def test_a_retired_key_loads_only_with_its_off_value(tmp_path: Path) -> None:
    source = next(p.parent for p in CHECKPOINTS if p.parent.name.endswith("_lewm"))
    checkpoint = tmp_path / "old"
    shutil.copytree(source, checkpoint)
    path = checkpoint / "config.json"
    payload = json.loads(path.read_text())
    payload["world_model"]["encoder"]["inverse_dynamics_out"] = 0  # written before its deletion
    path.write_text(json.dumps(payload))
    load_world_model(checkpoint)
    payload["world_model"]["encoder"]["inverse_dynamics_out"] = 14
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="inverse_dynamics_out is set, but that option was"):
        load_world_model(checkpoint)


def test_a_checkpoint_written_before_slots_and_the_position_head_were_deleted_loads(
    tmp_path: Path,
) -> None:
    """Files written while `latent_layout=slots` and the privileged position head existed
    record `num_slots` / `slot_iters` and `position_dims` / `position_mean` / `position_std`:
    they load with those options off; a slots model or one with a position head is refused."""
    source = next(p.parent for p in CHECKPOINTS if p.parent.name.endswith("_lewm"))
    checkpoint = tmp_path / "old"
    shutil.copytree(source, checkpoint)
    path = checkpoint / "config.json"
    payload = json.loads(path.read_text())
    payload["world_model"]["encoder"] |= {"num_slots": 4, "slot_iters": 3}
    payload["world_model"] |= {"position_dims": 0, "position_mean": None, "position_std": None}
    path.write_text(json.dumps(payload))
    assert load_world_model(checkpoint).latent_layout == "pooled"
    payload["world_model"] |= {"position_dims": 6, "position_mean": [0.0] * 6}
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="position_dims is set, but that option was deleted"):
        load_world_model(checkpoint)
    payload["world_model"] |= {"position_dims": 0, "position_mean": None}
    payload["world_model"]["encoder"]["latent_layout"] = "slots"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="latent_layout=slots .* was deleted"):
        load_world_model(checkpoint)


def test_the_default_checkpoints_are_shipped_for_the_default_env() -> None:
    """`wm-eval`'s and the ROS node's default checkpoints exist and drive the default env."""
    import yaml

    ros = yaml.safe_load((ROOT / "configs" / "ros_policy.yaml").read_text())
    defaults = [AgentConfig().checkpoint, ros["/**"]["ros__parameters"]["checkpoint"]]
    for checkpoint in defaults:
        assert read_checkpoint(ROOT / checkpoint).env.env_id == EnvSection().id, checkpoint

"""The real-robot loop rehearsed in simulation (`agent.ros.rehearsal`), tiny, over real Fast DDS:
the scripted teleoperator drives ``wm-ros-sim`` while ``wm-ros-record`` records, the bag is
imported, a tiny world model trains on it for two steps and ``wm-ros-policy`` commands a fresh
sim with it. Checks that every artefact agrees with the one before: the bag holds the episodes,
the import equals what ``wm-collect`` records for the same episodes (frame for frame), the
checkpoint carries the sim's contract, and the policy's commands stay in its bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the [ros] extra: pip install -e '.[ros]'")

from agent.ros.rehearsal import SIZES, RehearsalConfig, main, run_rehearsal, summary_line  # noqa: E402
from agent.ros.teleop_node import collect_config  # noqa: E402
from envs.collect.app import episode_plan, make_env  # noqa: E402
from envs.collect.config import PolicyConfig  # noqa: E402
from envs.collect.rollout import record_episode  # noqa: E402
from envs.common.contract import EnvContract  # noqa: E402
from envs.common.experts import make_policy  # noqa: E402
from envs.data import open_dataset  # noqa: E402
from envs.data.rosbag import open_bag  # noqa: E402
from tests.test_train import TINY_WM_OVERRIDES  # noqa: E402

pytestmark = pytest.mark.ros
TINY_TRAIN = ("steps=2", "batch_size=4", "clip_len=3", "log_every=1", "val_every=2")
TINY_TRAIN += ("optim.warmup_steps=1", "optim.decay_steps=1", *TINY_WM_OVERRIDES)


def test_command_line_refuses_bad_values_before_starting_anything(tmp_path, capsys) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="taken exists; remove it or choose another --out"):
        main(["--out", str(tmp_path / "taken"), "--episodes", "2"])
    with pytest.raises(ValueError, match="episodes=0: must be >= 1"):
        RehearsalConfig(episodes=0)
    assert SIZES["full"].episodes == 300  # scripts/make_checkpoints.sh's reach data
    assert "steps=1800" in SIZES["full"].train_args


@pytest.mark.slow
def test_tiny_rehearsal_artefacts_agree(tmp_path: Path) -> None:
    cfg = RehearsalConfig(
        out=str(tmp_path / "rehearsal"),
        episodes=2,  # seed 0: an expert episode, then a random one
        episode_steps=6,
        train_args=TINY_TRAIN,
        policy_episodes=1,
        policy_steps=2,
    )
    result = run_rehearsal(cfg)
    report = "\n".join(result.import_lines)

    # The bag holds every command of every episode, whole.
    with open_bag(result.bag) as bag:
        assert bag.topics["/wm/action"].count == 2 * 6 and not bag.cuts, report

    # The import is what wm-collect records for the same episodes, frame for frame.
    policy = PolicyConfig(cfg.policy, cfg.expert_fraction, cfg.noise, cfg.noise_max)
    collect = collect_config(cfg.env_id, cfg.seed, cfg.episodes, cfg.episode_steps, policy)
    env = make_env(collect.env)
    with open_dataset(result.dataset) as reader:
        imported, contract = list(reader), EnvContract.from_dataset_attrs(reader.attrs)
    assert len(imported) == cfg.episodes, report
    for index, ep in enumerate(imported):
        plan = episode_plan(collect, index)
        want = record_episode(
            env,
            make_policy(plan["policy"], env, noise=plan["noise"], seed=plan["seed"]),
            plan["seed"],
        )
        np.testing.assert_array_equal(ep.actions, want.actions)
        np.testing.assert_array_equal(ep.states, want.states)
        np.testing.assert_array_equal(ep.pixels, want.pixels)
        np.testing.assert_array_equal(ep.goal_pixels, want.goal_pixels)  # the latched goal topic

    # The checkpoint was trained under the sim's own contract.
    from world_model import load_world_model

    assert contract == EnvContract.from_env(env)
    assert load_world_model(result.checkpoint).env_contract == contract
    env.close()

    # The policy planned and commanded the sim, within the checkpoint's bounds. (Two training
    # steps leave the energy flat over actions: CEM's mean, zero, is a fine plan for it.)
    run = result.policy
    assert run.planned >= 2 and run.commands >= 2 and run.in_bounds, summary_line(run)
    assert (Path(cfg.out) / "rehearsal.json").is_file()

"""Does the planning energy see the cube? Energies of real configurations of push task instances.

For each task instance (protocol=task: the start and the task's goal image) the simulator is
posed in four real configurations, rendered, encoded, and scored by each energy towards the
goal image:

* `start`: the instance as reset;
* `arm_at_goal`: the arm at its goal pose, the cube not pushed (the trap: the greedy optimum of
  an energy that reads the arm);
* `cube_at_goal`: the cube on its target, the arm at its start;
* `standoff`: the arm lowered behind the cube on the push line, the cube not pushed yet (where
  the scripted expert goes first, a few steps from success).

Energies: `distance` (the agent's latent L1 distance), `head` (the checkpoint's reachability
head, in control steps) when the checkpoint has one. Reported per energy: each configuration's
energy as a fraction of the start's (`arm_at_goal` near 0 means the arm alone nearly zeroes
it), and `standoff_first`: the share of instances where the energy ranks the standoff (a few
steps from success) below the trap. 1.0 means the energy points the planner at the cube.

    python -m bench energy_configs --checkpoint checkpoints/push_lewm --instances 50

Writes bench/results/energy_configs.{json,md}, one row per checkpoint and energy.
"""

from __future__ import annotations

import configs.runtime  # noqa: F401  (OpenMP settings; before torch loads)

# isort: split
import argparse
import json

import gymnasium as gym
import mujoco
import numpy as np
import torch

import envs  # noqa: F401  (registers the wm/* ids)
from bench import store
from envs.common.experts import PUSH_Z
from envs.panda.model import CUBE_HALF
from world_model import load_world_model
from world_model.heads.reachability import load_head

OUT = store.RESULTS
CONFIGS = ("start", "arm_at_goal", "cube_at_goal", "standoff")


def posed_frames(env: gym.Env) -> dict[str, np.ndarray]:
    """The four configurations' frames `(H, W, 3)` of the env's current push instance, posed in
    the env's scratch copy of the scene (the live simulator is not touched)."""
    u = env.unwrapped
    d = u._goal_data
    goal_ee, goal_opening, goal_cube = u._goal_config()
    cube = u.cube_pos()
    direction = (goal_cube[:2] - cube[:2]) / np.linalg.norm(goal_cube[:2] - cube[:2])

    def pose(arm: np.ndarray | None, opening: float, cube_at: np.ndarray | None) -> np.ndarray:
        mujoco.mj_copyData(d, u.model, u.data)
        if arm is not None:
            u._place_robot(d, u.ik.solve(d.qpos, arm, np.eye(3)), opening)
        if cube_at is not None:
            u._set_cube(d, cube_at)
        mujoco.mj_forward(u.model, d)
        return u._render(d)

    standoff = np.r_[cube[:2] - direction * (CUBE_HALF + 0.012), PUSH_Z]
    return {
        "start": pose(None, 0.0, None),
        "arm_at_goal": pose(goal_ee, goal_opening, None),
        "cube_at_goal": pose(None, 0.0, goal_cube),
        "standoff": pose(standoff, 0.0, None),
    }


@torch.no_grad()
def measure(checkpoint: str, env_id: str, instances: int, seed: int) -> list[dict]:
    """One row per energy of the checkpoint: energy fractions and `standoff_first`."""
    wm = load_world_model(checkpoint).eval()
    head = load_head(checkpoint)
    env = gym.make(env_id)

    def encode(frame: np.ndarray) -> torch.Tensor:
        return wm.encode(torch.as_tensor(frame).permute(2, 0, 1)[None, None])[0, 0]  # [N, D]

    energies: dict[str, list[list[float]]] = {"distance": []}
    if head is not None:
        energies["head"] = []
    for i in range(instances):
        env.reset(seed=seed + i)
        goal = encode(env.unwrapped.goal_pixels)
        z = {name: encode(frame) for name, frame in posed_frames(env).items()}
        energies["distance"].append([float(wm.energy(z[c], goal)) for c in CONFIGS])
        if head is not None:
            energies["head"].append([float(head(z[c], goal)) for c in CONFIGS])
    env.close()
    rows = []
    for name, values in energies.items():
        e = np.array(values)  # [instances, 4]
        frac = e / e[:, :1]
        rows.append(
            {
                "checkpoint": checkpoint,
                "env": env_id,
                "energy": name,
                "instances": instances,
                "seed": seed,
                "start": float(e[:, 0].mean()),
                **{f"{c}_over_start": float(frac[:, k].mean()) for k, c in enumerate(CONFIGS)},
                "standoff_first": float((e[:, 3] < e[:, 1]).mean()),
            }
        )
    return rows


def to_markdown(rows: dict[str, dict]) -> str:
    lines = [
        "# Does the energy see the cube? (real configurations of push task instances)",
        "",
        "Command: `python -m bench energy_configs` (module docstring; rows since 2026-12-04 "
        "carry `provenance` in the JSON). Each configuration's energy towards the task's goal image, as a fraction "
        "of the start's; `standoff first`: share of instances where the arm lowered behind "
        "the cube (a few steps from success) scores better than the arm at its goal pose with "
        "the cube not pushed.",
        "",
        "| checkpoint | energy | instances | start | arm at goal, cube not | cube at goal, "
        "arm not | standoff | standoff first |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        lines.append(
            f"| {r['checkpoint']} | {r['energy']} | {r['instances']} | {r['start']:.3f} "
            f"| {r['arm_at_goal_over_start']:.2f} | {r['cube_at_goal_over_start']:.2f} "
            f"| {r['standoff_over_start']:.2f} | {r['standoff_first']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def render(data: dict) -> str:
    return to_markdown(data["rows"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--env", default="wm/PandaPush-v0")
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--label", default="", help="row label (default: the checkpoint)")
    args = parser.parse_args(argv)
    for row in measure(args.checkpoint, args.env, args.instances, args.seed):
        row["checkpoint"] = args.label or row["checkpoint"]
        row["provenance"] = store.provenance(checkpoint=args.checkpoint)
        key = f"{row['checkpoint']}:{row['energy']}"
        store.merge("energy_configs", {key: row}, render, OUT, archive_render=render)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

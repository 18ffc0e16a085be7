"""Stand-ins the ROS tests load into the node processes (this module holds no tests).

They follow the real contracts (the agent's ``Policy`` protocol, the ``wm/*`` env
observation and info keys), so the nodes' plumbing and safety are tested over real DDS
without MuJoCo or a checkpoint. The real agent and env are exercised by the closed-loop test.

* ``FakeReach``: a point end effector drawn as a red square on a 64x64 top-down image; the
  goal is another position; success within 2 cm.
* ``make_blob_servo``: an image-goal policy: moves the square towards where it is in the goal
  image (a pixel-space P controller), so it closes the loop through camera, goal and state.
* ``make_constant``: always the same action (``checkpoint`` = 7 comma-separated floats).
* ``make_nan_agent``: the real `MPCAgent` on a broken world model whose energies are all NaN.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.common.contract import EnvContract

# Top-down view: x in [0.2, 0.8] m maps to image rows, y in [-0.3, 0.3] m to columns.
VIEW_LOW, VIEW_SPAN, IMAGE_PX = np.array([0.2, -0.3]), 0.6, 64
ACTION_LOW = np.array([-0.075, -0.075, -0.075, 0.0, 0.0, 0.0, -1.0])
# What a model trained on FakeReach would carry: 10 Hz, a generous Panda-sized box (m).
FAKE_CONTRACT = EnvContract(
    env_id="wmtest/FakeReach-v0",
    control_hz=10.0,
    action_low=ACTION_LOW,
    action_high=-ACTION_LOW,
    image_size=IMAGE_PX,
    state_dim=7,
    action_dim=7,
    workspace_low=(0.1, -0.6, 0.0),
    workspace_high=(0.9, 0.6, 0.9),
)


def render_blob(xy: np.ndarray, size: int = IMAGE_PX) -> np.ndarray:
    """uint8 (size, size, 3): black with a red 5x5 square at the end effector."""
    img = np.zeros((size, size, 3), dtype=np.uint8)
    r, c = np.clip(((xy - VIEW_LOW) / VIEW_SPAN * (size - 1)).round().astype(int), 2, size - 3)
    img[r - 2 : r + 3, c - 2 : c + 3, 0] = 255
    return img


class FakeReach(gym.Env):
    """Minimal env with the ``wm/Panda*`` observation/info contract."""

    def __init__(self) -> None:
        self.action_space = gym.spaces.Box(ACTION_LOW, -ACTION_LOW, dtype=np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (IMAGE_PX, IMAGE_PX, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
            }
        )

    def _obs(self) -> dict[str, np.ndarray]:
        return {"pixels": render_blob(self.state[:2]), "state": self.state.astype(np.float32)}

    def _info(self) -> dict[str, Any]:
        distance = float(np.linalg.norm(self.state[:3] - self.goal[:3]))
        return {"success": distance < 0.02, "distance": distance}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self.state = np.array([0.4, -0.1, 0.3, 0.0, 0.0, 0.0, 1.0])
        self.goal = np.array([0.6, 0.12, 0.3, 0.0, 0.0, 0.0, 1.0])
        goal_obs = {"goal_pixels": render_blob(self.goal[:2]), "goal_state": self.goal.copy()}
        return self._obs(), {**self._info(), **goal_obs}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self.state = self.state + np.clip(action, self.action_space.low, self.action_space.high)
        info = self._info()
        return self._obs(), -info["distance"], False, False, info


gym.register("wmtest/FakeReach-v0", entry_point=FakeReach)


def _centroid(img: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(img[..., 0] > 127)
    return np.array([rows.mean(), cols.mean()]) if rows.size else np.full(2, np.nan)


class BlobServo:
    """Policy-protocol stand-in that servos the red square onto its goal-image position."""

    image_size = 48  # differs from the 64 px camera on purpose: the node must resize
    action_low, action_high = ACTION_LOW, -ACTION_LOW
    contract = FAKE_CONTRACT

    def __init__(self) -> None:
        self.stats: dict[str, float] = {}
        self.goal_rc = np.full(2, np.nan)

    def set_goal(self, goal_pixels: np.ndarray) -> None:
        assert goal_pixels.shape == (self.image_size, self.image_size, 3), goal_pixels.shape
        self.goal_rc = _centroid(goal_pixels)

    def reset(self) -> None:
        pass

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        assert pixels.shape == (self.image_size, self.image_size, 3), pixels.shape
        error_px = self.goal_rc - _centroid(pixels)  # [2] rows, cols
        action = np.zeros(7)
        action[:2] = error_px * VIEW_SPAN / (self.image_size - 1)  # px -> m, gain 1
        self.stats = {"plan_ms": 0.1, "energy": float(np.abs(error_px).sum())}
        return action  # NaN when the square is not seen: the node must zero it


class ConstantPolicy:
    """Returns the same action every step; for watchdog, clamp and memory tests."""

    image_size = 32
    action_low, action_high = ACTION_LOW, -ACTION_LOW
    contract = FAKE_CONTRACT

    def __init__(self, action: np.ndarray) -> None:
        self.action, self.stats = action, {"plan_ms": 0.0, "energy": 0.0}

    def set_goal(self, goal_pixels: np.ndarray) -> None:
        pass

    def reset(self) -> None:
        pass

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        return self.action.copy()


def make_blob_servo(checkpoint: str, planner: str = "", device: str = "cpu") -> BlobServo:
    """Factory with the ``agent.factory.load_agent`` signature."""
    return BlobServo()


def make_constant(checkpoint: str, planner: str = "", device: str = "cpu") -> ConstantPolicy:
    """Factory with the ``agent.factory.load_agent`` signature; ``checkpoint`` holds the action."""
    values = [float(v) for v in checkpoint.split(",")] if checkpoint else [0.02, 0, 0, 0, 0, 0, 0]
    return ConstantPolicy(np.array(values))


class StateServo(ConstantPolicy):
    """Moves the end effector straight at a known xyz target (privileged: ignores pixels).

    Only for checking the MuJoCo sim node over DDS; the learned agent gets no such hint.
    """

    image_size = 64

    def __init__(self, target_xyz: np.ndarray) -> None:
        super().__init__(np.zeros(7))
        self.target_xyz = target_xyz
        import envs  # noqa: F401  (it drives the MuJoCo sim node's wm/PandaReach-v0)

        env = gym.make("wm/PandaReach-v0")
        self.contract = EnvContract.from_env(env)
        env.close()

    def act(self, pixels: np.ndarray, state: np.ndarray) -> np.ndarray:
        action = np.zeros(7)
        action[:3] = self.target_xyz - np.asarray(state)[:3]
        return action


def make_state_servo(checkpoint: str, planner: str = "", device: str = "cpu") -> StateServo:
    """Factory with the ``agent.factory.load_agent`` signature; ``checkpoint`` holds ``x,y,z``."""
    return StateServo(np.array([float(v) for v in checkpoint.split(",")]))


class NaNWorldModel(torch.nn.Module):
    """A broken model: every energy is NaN. The agent must hold still, inside the bounds."""

    device, crop_size, env_contract = torch.device("cpu"), 64, None

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def encode(self, frames):
        return torch.zeros(frames.shape[0], frames.shape[1], 4, 8)

    def rollout(self, z, s, actions, past=None):
        return torch.full((*actions.shape[:3], 4, 8), float("nan"))

    @staticmethod
    def energy(z, goal):
        return (z - goal).abs().mean(dim=(-2, -1))


def make_nan_agent(checkpoint: str, planner: str = "", device: str = "cpu") -> Any:
    """Factory with the ``agent.factory.load_agent`` signature: the planning agent on NaN energies."""
    from agent.mpc import MPCAgent
    from planners import CEMConfig, make_planner

    low, high = ACTION_LOW, -ACTION_LOW
    cfg = CEMConfig(num_samples=8, iterations=1, horizon=1, num_elites=2)
    model = NaNWorldModel()
    model.env_contract = FAKE_CONTRACT  # as if trained on FakeReach: the node takes its rate
    return MPCAgent(model, make_planner(cfg, low, high), low, high)

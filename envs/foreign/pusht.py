"""gym-pusht's Push-T (``gym_pusht:gym_pusht/PushT-v0``) behind this repo's hooks
(envs/foreign/env_hooks.py), and its relative-action variant ``pusht/PushTRelative-v0``.

Push-T is a 2-D pymunk scene in a 512 x 512 px world: a disc agent (radius 15 px) driven by a
PD controller towards the commanded point (actions are absolute targets in [0, 512]^2, 10 Hz,
10 physics steps of 0.01 s each), a T-shaped block, and a fixed green target pose of the T.

Two action interfaces, two ids (the contract records which, envs/common/contract.py):

- ``gym_pusht:gym_pusht/PushT-v0``, gym-pusht's own: the action is the absolute target (px).
- ``pusht/PushTRelative-v0`` (`PushTRelativeEnv`), the anchors' (stable-worldmodel's
  ``PushT(relative=True)``, DINO-WM's data): an action in [-1, 1]^2 sets the target to the
  agent's position + ``action_scale`` (100 px) x the action, clipped into the 512 px window.
  The same PD controller tracks it; state, frames, goals and success are gym-pusht's. CEM
  then searches small moves around the agent instead of 25 targets anywhere in the window.

State. The full state is the agent's position and velocity, the block's pose and velocities,
and the last action (drawn by the env's 680 px ``render()`` only): 12 float64s, `STATE_FIELDS`.
gym-pusht's own ``_set_state`` / ``reset(options={"reset_to_state": ...})`` is not used to
restore it: it sets the block's angle after its position (the T then turns about its centre of
gravity and lands elsewhere than recorded) and runs one physics step. `set_state` rebuilds the
pymunk space (as the env's own ``reset`` does) and sets the angle first, so a restored state
reads back bit-identical and a plan replayed from it gives the same trajectory every time:
contact caches of earlier candidates do not leak into the next one.

Success, two protocols:

- The env's own task (protocol=task): coverage of the green target by the T above 95 %, the
  env's ``is_success``; distance = 1 - coverage (unitless).
- A goal given as a state (protocol=dataset, replay goals): DINO-WM's and LeWM's Push-T test
  (``eval_state`` in dino_wm's env/pusht/pusht_wrapper.py and stable-worldmodel's PushT env,
  which the published Push-T figures use): the L2 norm of the (agent x, agent y, block x,
  block y) error below 20 px *and* the block's angle error below 20 degrees (pi / 9). The
  agent's position is part of their test, so it is part of ours. It is written as one
  distance, ``max(xy error / 20 px, angle error / 20 deg)``, success below 1.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import shapely.geometry as sg  # gym-pusht's own dependency (its coverage test)
from gym_pusht.envs.pusht import PushTEnv
from pymunk.vec2d import Vec2d  # gym-pusht's own dependency

from envs.foreign.env_hooks import EnvHooks, TaskMeasure

STATE_FIELDS = (
    *("agent_x", "agent_y", "agent_vx", "agent_vy"),
    *("block_x", "block_y", "block_angle", "block_vx", "block_vy", "block_omega"),
    *("last_action_x", "last_action_y"),
)
POS_TOL = 20.0  # px, DINO-WM / LeWM eval_state
ANGLE_TOL = np.pi / 9  # rad (20 degrees), same source
AGENT_RADIUS = 15.0  # px, gym_pusht's add_circle
BLOCK_RADIUS = 77.0  # px, farthest point of the T from its centre of gravity (15, 120)
# The T's outline in the block frame (px), corners in order: bar 120 x 30, stem 30 x 90.
T_OUTLINE = np.array(
    [(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30)], float
)
WINDOW = 512.0  # px, gym-pusht's world (its absolute action box)
ACTION_SCALE = 100.0  # px per unit of relative action: stable-worldmodel's PushT.action_scale
# Largest relative action of the scripted pusher (x action_scale: 25 px per step). The anchors'
# Push-T data (DINO-WM's demonstrations) has a per-axis action std of 0.2; the pusher at full
# speed has 0.37 and moves the T so far in 25 steps that those goals test the planner's reach
# more than the protocol's do. Capped, it has 0.19 (slower: 4 of seeds 0-9 solved in 300 steps).
PUSHER_MAX_MOVE = 0.25


class PushTRelativeEnv(PushTEnv):
    """gym-pusht's Push-T driven by relative actions, as the anchors drive it.

    ``step(a)``, ``a`` in [-1, 1]^2: the PD controller's target becomes the agent's position +
    ``action_scale`` x ``a`` (px), clipped into [0, 512]^2 (stable-worldmodel leaves it
    unclipped; the walls stop the agent anyway, and a target outside the window would only
    pull it harder into them). Everything else is gym-pusht's ``PushTEnv``.
    """

    def __init__(self, action_scale: float = ACTION_SCALE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (np.isfinite(action_scale) and action_scale > 0):
            raise ValueError(f"action_scale={action_scale}: must be > 0 px")
        self.action_scale = float(action_scale)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    @property
    def action_interface(self) -> str:
        """``"relative:<action_scale>"``: what the env contract records (gym-pusht's own
        absolute interface is the contract's default, ``native``)."""
        return f"relative:{self.action_scale:g}"

    def absolute_target(self, action: np.ndarray) -> np.ndarray:
        """Relative action (2,) -> the absolute agent target (2,) px the PD controller tracks."""
        move = self.action_scale * np.clip(np.asarray(action, np.float64)[:2], -1.0, 1.0)
        return np.clip(np.asarray(self.agent.position) + move, 0.0, WINDOW)

    def step(self, action: np.ndarray):
        return super().step(self.absolute_target(action))


def get_state(base: gym.Env) -> np.ndarray:
    """The 12 numbers of `STATE_FIELDS` (px, px/s, rad, rad/s; NaN action before the first)."""
    if not hasattr(base, "space"):
        raise RuntimeError("PushTEnv has no simulator before its first reset(): reset it first")
    agent, block = base.agent, base.block
    last = base._last_action if base._last_action is not None else (np.nan, np.nan)
    return np.array(
        [
            *agent.position,
            *agent.velocity,
            *block.position,
            block.angle,
            *block.velocity,
            block.angular_velocity,
            *np.asarray(last, np.float64)[:2],
        ],
        np.float64,
    )


def set_state(base: gym.Env, state: np.ndarray) -> None:
    """Restore a `get_state` array exactly (see the module docstring for why not ``_set_state``)."""
    s = np.asarray(state, np.float64)
    if s.shape != (len(STATE_FIELDS),):
        raise ValueError(f"Push-T state has shape {s.shape}, expected ({len(STATE_FIELDS)},)")
    if not np.isfinite(s[:10]).all():  # only the last action may be missing (NaN)
        field = STATE_FIELDS[int(np.argmin(np.isfinite(s[:10])))]
        raise ValueError(f"Push-T state has {field}={s[STATE_FIELDS.index(field)]}: not a pose")
    base._setup()  # a fresh pymunk space: no contact cache from the state it was in
    base.agent.position, base.agent.velocity = tuple(s[0:2]), tuple(s[2:4])
    base.block.angle = float(s[6])  # first: pymunk turns the body about its centre of gravity
    base.block.position = tuple(s[4:6])
    base.block.velocity, base.block.angular_velocity = tuple(s[7:9]), float(s[9])
    base._last_action = None if np.isnan(s[10]) else s[10:12].copy()
    _update_shapes(base)


def _update_shapes(base: gym.Env) -> None:
    """Move the shapes' cached world outlines to their bodies' poses: ``debug_draw`` draws
    those, and pymunk refreshes them only in a physics step (why ``_set_state`` steps)."""
    for shape in base.space.shapes:
        shape.cache_bb()


def step_dynamics(base: gym.Env, action: np.ndarray) -> None:
    """gym-pusht's ``step`` without its coverage (shapely), observation and info: the same
    PD control and pymunk steps, in the same order (the oracle: 2.7x faster per step).
    ``action`` is the env's own: a relative one for `PushTRelativeEnv`."""
    if isinstance(base, PushTRelativeEnv):
        action = base.absolute_target(action)
    base.n_contact_points = 0
    base._last_action = action
    for _ in range(int(1 / (base.dt * base.control_hz))):
        accel = base.k_p * (action - base.agent.position) + base.k_v * (
            Vec2d(0, 0) - base.agent.velocity
        )
        base.agent.velocity += accel * base.dt
        base.space.step(base.dt)


def features(base: gym.Env) -> np.ndarray:
    """(2, 3): agent (x, y, 0) and block (x, y, angle), px and rad."""
    agent, block = base.agent.position, base.block.position
    return np.array([[agent[0], agent[1], 0.0], [block[0], block[1], base.block.angle]])


def _angle_error(a: float, b: float) -> float:
    return float(abs((a - b + np.pi) % (2 * np.pi) - np.pi))


def goal_distance(current: np.ndarray, goal: np.ndarray) -> float:
    """``max(|(agent, block) xy error| / 20 px, block angle error / 20 deg)``: below 1 is
    DINO-WM's and LeWM's Push-T success."""
    xy = np.linalg.norm((current[:, :2] - goal[:, :2]).ravel())
    return max(xy / POS_TOL, _angle_error(current[1, 2], goal[1, 2]) / ANGLE_TOL)


def part_distances(current: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(2,): agent and block, each on `goal_distance`'s scale (1 = the success tolerance)."""
    agent = np.linalg.norm(current[0, :2] - goal[0, :2]) / POS_TOL
    block = max(
        np.linalg.norm(current[1, :2] - goal[1, :2]) / POS_TOL,
        _angle_error(current[1, 2], goal[1, 2]) / ANGLE_TOL,
    )
    return np.array([agent, block])


def task_info(base: gym.Env, info: dict[str, Any]) -> dict[str, Any]:
    """The env's own task: success at coverage above its 95 %, distance = 1 - coverage."""
    coverage = float(info["coverage"]) if "coverage" in info else float(base._get_coverage())
    return {"success": coverage > base.success_threshold, "distance": 1.0 - coverage}


def render(base: gym.Env, size: int) -> np.ndarray:
    """The env's own pixel observation (no action marker) drawn at ``size`` px."""
    base.observation_width = base.observation_height = size
    return np.asarray(base._render(visualize=False), np.uint8)[..., :3]


def goal(base: gym.Env, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The T on the green target, the agent where it is: the own task's goal image and state.

    Drawn without a physics step, so the agent may overlap the T; only the block's pose is the
    task, the agent's place in the image is incidental.
    """
    saved = get_state(base)
    target = np.asarray(base.goal_pose, np.float64)
    base.block.angle, base.block.position = float(target[2]), tuple(target[:2])
    _update_shapes(base)
    frame = render(base, size)
    state = np.zeros(7, np.float32)
    state[:5] = [*base.agent.position, *target[:2], target[2] % (2 * np.pi)]  # as get_obs
    set_state(base, saved)
    return frame, state


def _outline_points(step: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` px along `T_OUTLINE` and their outward normals (block frame)."""
    points, normals = [], []
    for a, b in zip(T_OUTLINE, np.roll(T_OUTLINE, -1, axis=0), strict=True):
        edge = b - a
        length = np.linalg.norm(edge)
        normal = np.array([edge[1], -edge[0]]) / length  # outward for this winding
        for t in np.arange(step / 2, length, step) / length:
            points.append(a + t * edge)
            normals.append(normal)
    return np.array(points), np.array(normals)


_POINTS, _NORMALS = _outline_points()


def _to_world(pose: np.ndarray, local: np.ndarray, direction: bool = False) -> np.ndarray:
    c, s = np.cos(pose[2]), np.sin(pose[2])
    rotated = local @ np.array([[c, s], [-s, c]])  # rows rotated by the pose's angle
    return rotated if direction else rotated + pose[:2]


def pusher_action(base: gym.Env, target: np.ndarray, push_depth: float = 25.0) -> np.ndarray:
    """One step of a scripted pusher that moves the T towards ``target`` (x, y, angle).

    For each point of the T's outline, where it must go is known (target pose minus current
    pose); the agent pushes at the point whose inward normal best agrees with that motion,
    which translates and turns the T at once. It first goes to a standoff just outside that
    point, circling the T at a safe radius when the straight way would cross it, then pushes
    ``push_depth`` px into the surface. Returns the absolute agent target (2,), px.
    """
    pose = np.array([*base.block.position, base.block.angle])
    agent = np.asarray(base.agent.position)
    points, normals = _to_world(pose, _POINTS), _to_world(pose, _NORMALS, direction=True)
    motion = _to_world(target, _POINTS) - points  # (P, 2) where each point must go
    score = np.einsum("pd,pd->p", -normals, motion)  # pushing along -normal moves it there
    i = int(np.argmax(score))
    if score[i] < 4.0:  # nothing worth a push: hold still
        return agent.copy()
    contact, normal = points[i], normals[i]
    standoff = contact + normal * (AGENT_RADIUS + 8.0)
    rel = agent - contact
    along, lateral = rel @ normal, abs(rel[0] * normal[1] - rel[1] * normal[0])
    if -2.0 < along < AGENT_RADIUS + 14.0 and lateral < 8.0:  # at the contact: push
        return contact - normal * push_depth
    centre = _to_world(pose, np.array([[0.0, 45.0]]))[0]  # the T's centre of gravity
    safe = BLOCK_RADIUS + AGENT_RADIUS + 12.0
    outline = sg.Polygon(_to_world(pose, T_OUTLINE))
    if outline.distance(sg.LineString([agent, standoff])) < AGENT_RADIUS + 2.0:  # circle the T
        heading, goal_heading = agent - centre, standoff - centre
        a0, a1 = np.arctan2(heading[1], heading[0]), np.arctan2(goal_heading[1], goal_heading[0])
        turn = (a1 - a0 + np.pi) % (2 * np.pi) - np.pi
        a = a0 + np.clip(turn, -0.6, 0.6)
        return centre + safe * np.array([np.cos(a), np.sin(a)])
    return standoff


def relative_action(
    base: PushTRelativeEnv, target: np.ndarray, max_move: float = PUSHER_MAX_MOVE
) -> np.ndarray:
    """The relative action (2,) that moves the PD target towards ``target`` (px):
    ``(target - agent) / action_scale``, scaled down as a whole to at most ``max_move`` per axis
    so the agent still heads for the target (clipping each axis would turn it off course)."""
    move = (np.asarray(target, np.float64) - np.asarray(base.agent.position)) / base.action_scale
    return move / max(1.0, float(np.abs(move).max()) / max_move)


def make_pusher(env: gym.Env, rng: np.random.Generator, noise: float):
    """Policy ``(obs, info) -> action`` pushing the T to the env's target pose, with Gaussian
    noise of ``noise`` x the action bound per step: x 512 px for gym-pusht's absolute targets
    (play data: 0.02-0.1), x ``action_scale`` (100 px) for `PushTRelativeEnv`, where it moves
    at most `PUSHER_MAX_MOVE` per step (the anchors' pace)."""
    base = env.unwrapped
    low, high = env.action_space.low, env.action_space.high
    relative = isinstance(base, PushTRelativeEnv)

    def policy(obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        action = np.zeros(low.shape, np.float64)
        target = pusher_action(base, np.asarray(base.goal_pose, np.float64))
        action[:2] = relative_action(base, target) if relative else target
        action[:2] += rng.normal(size=2) * noise * high[:2]
        return np.clip(action, low, high).astype(np.float32)

    return policy


HOOKS = EnvHooks(
    get_state=get_state,
    set_state=set_state,
    measure=TaskMeasure(
        features=features,
        distance=goal_distance,
        part_distances=part_distances,
        threshold=1.0,
        unit="x DINO-WM's tolerance (20 px, 20 deg)",
        label=(
            "Push-T goal-state test of DINO-WM / LeWM: max(|(agent, block) xy error| / 20 px, "
            "block angle error / 20 deg)"
        ),
    ),
    goal=goal,
    task_info=task_info,
    task_description={
        "distance": "1 - coverage of the green target by the T (gym-pusht's own reward)",
        "unit": "fraction of the target area",
        "threshold": "0.05: coverage above 95 %, gym-pusht's is_success",
    },
    render=render,
    expert=make_pusher,
    step_dynamics=step_dynamics,
    terminates_on_success=True,
)

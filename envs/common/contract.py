"""The env contract: what a trained world model assumes about the env it drives.

A world model learns the dynamics of one env at one control rate, from images of one size and
actions inside one box. Those facts travel with the checkpoint (`config.json`, section
``"env"``), are filled by ``wm-train`` from the dataset attributes, and every tool that drives
an env with a checkpoint (``wm-eval``, ``wm-demo``, ``wm-energy``, ``wm-ros-policy``) checks the
env against them with `EnvContract.check_compatible` before the first action.

Bounds and the workspace may be *narrowed* by the user (a smaller box is still inside what the
model saw) but never widened; everything else must match exactly. That includes the action
interface (what an action means where an env offers more than one: gym-pusht's absolute
targets or the anchors' relative moves, envs/foreign/pusht.py), checked first so that a model
run on the other interface is refused with a line naming both. The camera (pose, field of
view) and the physics step are checked where both sides know them: checkpoints written before
they joined the contract leave them empty, meaning "the env's default" for envs whose config
has one (wm/Panda*), "unknown, not checked" otherwise. A study that varies them on purpose
passes ``allow_render_change`` (``wm-eval agent.allow_contract_change=true``), and the
differences are returned so the caller can record them. A recorded dataset is checked with
`EnvContract.check_same`: every field must match the env that replays its goals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any

import gymnasium as gym
import numpy as np

_RATE_RTOL = 1e-6  # control rates are decimal numbers written as JSON: compare, don't equate
_BOUND_ATOL = 1e-6  # bounds pass through float32 action spaces (0.075 -> 0.07500000298)
NATIVE_ACTIONS = "native"
"""`EnvContract.action_interface` of an env taking its own action space as it defines it (every
env but the relative Push-T; gym-pusht's Push-T: absolute targets), and of contracts written
before the field existed."""
RENDER_FIELDS = ("camera_pos", "camera_target", "camera_fovy", "sim_dt")
"""What the model never sees as a number but learned from the pixels and the dynamics: a
change is refused unless explicitly allowed (then recorded)."""


def _floats(values: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Plain floats; float32 values by their shortest repr (0.075, not 0.07500000298), no -0.0."""
    array = np.asarray(values).reshape(-1)
    if array.dtype == np.float32:
        return tuple(float(str(v)) + 0.0 for v in array)
    return tuple(float(v) + 0.0 for v in array.astype(np.float64))


@dataclass(frozen=True)
class EnvContract:
    """Env id, control rate, action box, image size and frozen dims a world model was trained on.

    Units: ``control_hz`` in Hz (one action per ``1 / control_hz`` s), action bounds in the env's
    action units (wm/Panda*: metres, radians, gripper opening), workspace in metres in the robot
    base frame. Build one with `from_env`, `from_dataset_attrs` or `from_dict`.
    """

    env_id: str
    """Gymnasium id of the env the data came from (e.g. ``wm/PandaReach-v0``)."""
    control_hz: float
    """Actions per second; the predictor's one step is ``1 / control_hz`` seconds."""
    action_low: tuple[float, ...]
    """Per-dimension lower action bound (length ``action_dim``)."""
    action_high: tuple[float, ...]
    """Per-dimension upper bound; ``high == low`` marks a frozen dimension."""
    image_size: int
    """Square camera image side in pixels, as recorded (the encoder resizes to its crop)."""
    state_dim: int
    """Length of ``obs["state"]``."""
    action_dim: int
    """Length of an action."""
    env_revision: int | None = None
    """``envs.ENV_REVISION`` of the simulated scene; None for envs outside this project."""
    workspace_low: tuple[float, ...] = ()
    """Lower corner of the box the end effector is kept in (m); empty when the env has none."""
    workspace_high: tuple[float, ...] = ()
    """Upper corner of that box (m)."""
    camera_pos: tuple[float, ...] = ()
    """Camera position (m, robot base frame) the frames were rendered from; empty = unknown
    (checkpoints from before the field: the env's default camera; envs whose camera is not a
    pose: not checked)."""
    camera_target: tuple[float, ...] = ()
    """Point that camera looks at (m); empty = unknown."""
    camera_fovy: float | None = None
    """That camera's vertical field of view (degrees); None = unknown."""
    sim_dt: float | None = None
    """Physics time step (s) under each control step; None = unknown (not checked)."""
    action_interface: str = NATIVE_ACTIONS
    """What an action means: ``native`` = the env's own action space (gym-pusht: the absolute
    target, px; contracts from before the field say nothing and are native), or the env's own
    name for another interface (``relative:100``: Push-T's target = agent + 100 px x action,
    ``pusht/PushTRelative-v0``). Must match exactly."""

    def __post_init__(self) -> None:
        for name in ("action_low", "action_high", "workspace_low", "workspace_high"):
            object.__setattr__(self, name, _floats(getattr(self, name)))
        object.__setattr__(self, "control_hz", float(self.control_hz))
        for name in ("camera_pos", "camera_target"):
            object.__setattr__(self, name, _floats(getattr(self, name)))
            if len(getattr(self, name)) not in (0, 3):
                raise ValueError(f"EnvContract.{name}={getattr(self, name)}: 3 values (m) or none")
        for name in ("camera_fovy", "sim_dt"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
                if not (math.isfinite(float(value)) and float(value) > 0):
                    raise ValueError(f"EnvContract.{name}={value}: must be > 0 (or null: unknown)")
        if not self.env_id:
            raise ValueError("EnvContract.env_id is empty")
        if not (isinstance(self.action_interface, str) and self.action_interface):
            raise ValueError(
                f"EnvContract.action_interface={self.action_interface!r}: a name such as "
                f"{NATIVE_ACTIONS!r} or 'relative:100'"
            )
        if not (math.isfinite(self.control_hz) and self.control_hz > 0):
            raise ValueError(f"EnvContract.control_hz={self.control_hz}: must be a rate > 0 Hz")
        if self.image_size < 1 or self.state_dim < 1 or self.action_dim < 1:
            raise ValueError(
                f"EnvContract image_size={self.image_size}, state_dim={self.state_dim}, "
                f"action_dim={self.action_dim}: must all be >= 1"
            )
        if len(self.action_low) != self.action_dim or len(self.action_high) != self.action_dim:
            raise ValueError(
                f"EnvContract action_low={self.action_low} / action_high={self.action_high} "
                f"need action_dim={self.action_dim} entries"
            )
        if any(lo > hi for lo, hi in zip(self.action_low, self.action_high, strict=True)):
            raise ValueError(f"EnvContract action_low={self.action_low} > action_high somewhere")
        if len(self.workspace_low) != len(self.workspace_high) or any(
            lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)
        ):
            raise ValueError(
                f"EnvContract workspace_low={self.workspace_low} must be a box below "
                f"workspace_high={self.workspace_high} (or both empty)"
            )

    # ------------------------------------------------------------------ construction
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists); the ``"env"`` section of ``config.json``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvContract:
        """Inverse of `to_dict`; unknown keys are refused (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"env contract: unknown keys {unknown} (known: {sorted(known)})")
        missing = sorted(f.name for f in fields(cls) if f.name not in data and f.default is MISSING)
        if missing:
            raise ValueError(f"env contract: missing keys {missing}")
        return cls(**dict(data))

    @classmethod
    def from_env(cls, env: gym.Env) -> EnvContract:
        """The contract of a live env: its id, ``control_hz``, action space and observation shapes.

        Every env this project makes declares ``control_hz`` (on the env itself or on a wrapper
        such as the pixel adapter); an env without one is refused rather than assumed 5 Hz.
        """
        base = env.unwrapped
        spec = env.spec or base.spec
        env_id = spec.id if spec is not None else type(base).__name__
        try:
            control_hz = env.get_wrapper_attr("control_hz")
        except AttributeError as exc:
            raise ValueError(
                f"env {env_id} declares no control_hz: every env driven with a world model must "
                "say how many actions per second it takes"
            ) from exc
        pixels = env.observation_space["pixels"].shape
        live = cls(
            env_id=env_id,
            control_hz=control_hz,
            action_low=_floats(env.action_space.low),
            action_high=_floats(env.action_space.high),
            image_size=int(pixels[0]),
            state_dim=int(env.observation_space["state"].shape[0]),
            action_dim=int(env.action_space.shape[0]),
            env_revision=getattr(base, "env_revision", None),  # only this project's envs have one
            workspace_low=getattr(base, "workspace_low", ()),  # only arms with a workspace box
            workspace_high=getattr(base, "workspace_high", ()),
            # Only envs with a second interface name theirs (envs/foreign/pusht.py).
            action_interface=getattr(base, "action_interface", NATIVE_ACTIONS),
            **_render_settings(base),
        )
        # What the env's config class draws by default: what a contract that does not record
        # its camera is compared with (`render_changes`). Not a field: never saved.
        object.__setattr__(live, "_defaults", _default_render_settings(base))
        return live

    @classmethod
    def from_dataset_attrs(cls, attrs: Mapping[str, Any]) -> EnvContract:
        """The contract a dataset was recorded under (``data`` attrs of an `envs.data.hdf5` file).

        Datasets written before the attrs held the action box (``action_low`` / ``action_high``)
        get it by building the recorded env from ``env_id`` + ``env_kwargs``.
        """
        if "env_contract" in attrs:
            stamped = cls.from_dict(_json(attrs["env_contract"]))
            # Datasets recorded before the camera joined the contract record it in `camera`
            # (and the physics step in `env_kwargs`): fill what the stamp leaves unknown.
            recorded = _recorded_render_settings(attrs)
            unknown = {k: v for k, v in recorded.items() if getattr(stamped, k) in ((), None)}
            return replace(stamped, **unknown)
        missing = [k for k in ("env_id", "control_hz", "image_size") if k not in attrs]
        if missing:
            raise ValueError(f"dataset attrs lack {missing}: cannot tell which env recorded it")
        import envs  # noqa: F401  (registers the wm/* ids)

        kwargs = _json(attrs.get("env_kwargs", "{}"))
        env_id = str(_json(attrs.get("env_args", "{}")).get("env_name", attrs["env_id"]))
        if env_id.startswith("wm/"):
            env = gym.make(env_id, **kwargs)
        else:  # a foreign id: the same pixel adapter wm-collect recorded it through
            from envs.foreign.make import make_gym_env

            env = make_gym_env(env_id, **kwargs)
        try:
            live = cls.from_env(env)
        finally:
            env.close()
        recorded = replace(
            live,
            control_hz=float(attrs["control_hz"]),
            image_size=int(attrs["image_size"]),
            env_revision=attrs.get("env_revision", live.env_revision),
        )
        recorded.check_compatible(live, where="dataset attrs vs the env they name")
        return recorded

    # ------------------------------------------------------------------ checks
    def check_compatible(
        self, other: EnvContract, where: str = "env", allow_render_change: bool = False
    ) -> list[str]:
        """Raise ValueError unless ``other`` (the env being driven) fits this (trained) contract.

        Action interface, id, control rate, image size, dims and revision must match (the
        interface first: its line names both, where the ids of its two Push-T envs would say
        less); ``other``'s action box and
        workspace must lie inside this one's (narrowing is fine, widening is not). Camera and
        physics step (`RENDER_FIELDS`) must match where both are known, unless
        ``allow_render_change``; returns those allowed differences (empty when none).
        """

        def refuse(what: str, trained: Any, found: Any) -> None:
            raise ValueError(
                f"{where}: {what} mismatch: the checkpoint was trained with {what}={trained}, "
                f"the env has {what}={found}"
            )

        if other.action_interface != self.action_interface:
            raise ValueError(
                f"{where}: action_interface mismatch: the checkpoint was trained with "
                f"action_interface={self.action_interface}, the env has "
                f"action_interface={other.action_interface} ({NATIVE_ACTIONS}: the env's own "
                "action space, e.g. gym-pusht's absolute targets); drive it with the env it was "
                "trained on"
            )
        if other.env_id != self.env_id:
            refuse("env_id", self.env_id, other.env_id)
        if not math.isclose(other.control_hz, self.control_hz, rel_tol=_RATE_RTOL):
            refuse("control_hz", self.control_hz, other.control_hz)
        for name in ("image_size", "state_dim", "action_dim"):
            if getattr(other, name) != getattr(self, name):
                refuse(name, getattr(self, name), getattr(other, name))
        known = None not in (self.env_revision, other.env_revision)
        if known and other.env_revision != self.env_revision:
            refuse("env_revision", self.env_revision, other.env_revision)
        self.check_narrower(other.action_low, other.action_high, "action", where)
        if other.workspace_low or self.workspace_low:
            self.check_narrower(other.workspace_low, other.workspace_high, "workspace", where)
        changes = self.render_changes(other)
        if changes and not allow_render_change:
            raise ValueError(
                f"{where}: {'; '.join(changes)}. The model learned from frames of that camera and "
                "dynamics of that step; pass agent.allow_contract_change=true to run anyway "
                "(recorded in results.json)"
            )
        return changes

    def check_same(self, other: EnvContract, where: str, hint: str = "") -> None:
        """Raise ValueError unless ``other`` (the env being driven) is the env this contract
        was recorded in: every field equal (rates and bounds up to float rounding), the camera
        and physics step where both know them. What a recorded dataset needs: its goals were
        reached in that many steps of that size, and its frames come from that camera; a
        checkpoint may also be driven in a narrower box (`check_compatible`)."""
        source = "the dataset was recorded with"
        problems = [
            f"{name} mismatch: {source} {name}={mine}, the env has {name}={theirs}"
            for name, mine, theirs in self._differences(other)
        ]
        problems += self.render_changes(other, source)
        if problems:
            raise ValueError(f"{where}: {'; '.join(problems)}" + (f"; {hint}" if hint else ""))

    def _differences(self, other: EnvContract) -> list[tuple[str, Any, Any]]:
        """(field, this value, other value) for every non-render field that differs; the
        revision only where both record one."""
        out = []
        for f in fields(self):
            name, mine, theirs = f.name, getattr(self, f.name), getattr(other, f.name)
            if name in RENDER_FIELDS or (name == "env_revision" and None in (mine, theirs)):
                continue
            if isinstance(mine, tuple) or name == "control_hz":
                a, b = np.atleast_1d(mine), np.atleast_1d(theirs)
                same = a.shape == b.shape and np.allclose(a, b, rtol=_RATE_RTOL, atol=_BOUND_ATOL)
            else:
                same = mine == theirs
            if not same:
                out.append((name, list(mine) if isinstance(mine, tuple) else mine,
                            list(theirs) if isinstance(theirs, tuple) else theirs))  # fmt: skip
        return out

    def combine(self, other: EnvContract) -> EnvContract | None:
        """One contract for data recorded under both, or None when they differ. A render
        setting that one side does not record (a dataset from before it joined the contract)
        is unknown, not different: the known value is kept."""
        known = {
            name: getattr(other, name) if getattr(self, name) in ((), None) else getattr(self, name)
            for name in RENDER_FIELDS
        }
        merged, theirs = replace(self, **known), replace(other, **known)
        return merged if merged == theirs and not self.render_changes(other) else None

    def render_changes(
        self, other: EnvContract, source: str = "the checkpoint was trained with"
    ) -> list[str]:
        """``"camera_fovy mismatch: the checkpoint was trained with camera_fovy=50.0, the env
        has camera_fovy=90.0"`` for each of `RENDER_FIELDS` that both know and that differ.

        A field this contract leaves unknown is taken as ``other``'s default where ``other``
        came from `from_env` on an env with a default config (wm/Panda*: its camera and
        physics step): contracts written before the field joined (every shipped checkpoint)
        were recorded with the default, so a camera set through ``env.kwargs`` is seen."""
        changes = []
        defaults = getattr(other, "_defaults", {})
        for name in RENDER_FIELDS:
            trained, found = getattr(self, name), getattr(other, name)
            assumed = ""
            if trained in ((), None) and defaults.get(name) not in ((), None):
                trained, assumed = defaults[name], " (not recorded: the env's default)"
            if trained in ((), None) or found in ((), None):
                continue  # unknown on one side: not checked
            a, b = np.atleast_1d(trained), np.atleast_1d(found)
            if a.shape != b.shape or not np.allclose(a, b, rtol=_RATE_RTOL, atol=_BOUND_ATOL):
                changes.append(
                    f"{name} mismatch: {source} {name}={trained}{assumed}, "
                    f"the env has {name}={found}"
                )
        return changes

    def check_narrower(
        self, low: Sequence[float], high: Sequence[float], kind: str = "action", where: str = ""
    ) -> None:
        """Raise ValueError unless ``[low, high]`` lies inside this contract's ``kind`` box.

        ``kind`` is ``"action"`` or ``"workspace"``.
        """
        own_low, own_high = getattr(self, f"{kind}_low"), getattr(self, f"{kind}_high")
        low, high = _floats(low), _floats(high)
        prefix = f"{where}: " if where else ""
        if len(low) != len(own_low) or len(high) != len(own_high):
            raise ValueError(
                f"{prefix}{kind} bounds {list(low)} / {list(high)} have the wrong length: the "
                f"checkpoint's are {list(own_low)} / {list(own_high)}"
            )
        for i, (lo, hi, olo, ohi) in enumerate(zip(low, high, own_low, own_high, strict=True)):
            if lo < olo - _BOUND_ATOL or hi > ohi + _BOUND_ATOL:
                raise ValueError(
                    f"{prefix}{kind} bounds widened in dimension {i}: the checkpoint was trained "
                    f"with [{olo}, {ohi}], got [{lo}, {hi}]; bounds may only be narrowed "
                    f"(checkpoint {kind}_low={list(own_low)}, {kind}_high={list(own_high)})"
                )


def _render_settings(base: Any) -> dict[str, Any]:
    """Camera pose, field of view and physics step of a live env, where it declares them
    (wm/Panda*: its config's camera; every env here with a MuJoCo step: ``sim_dt``)."""
    cfg = getattr(base, "cfg", None)
    out: dict[str, Any] = {"sim_dt": getattr(base, "sim_dt", None)}
    if hasattr(cfg, "camera_pos"):
        out |= {
            "camera_pos": cfg.camera_pos,
            "camera_target": cfg.camera_target,
            "camera_fovy": cfg.camera_fovy,
        }
    return out


def _default_render_settings(base: Any) -> dict[str, Any]:
    """`_render_settings` of the env's default config (``default_config()``), where it has one
    that holds a camera; empty otherwise (foreign and dm_control envs: unknown)."""
    make_default = getattr(type(base), "default_config", None)
    if make_default is None or not hasattr(getattr(base, "cfg", None), "camera_pos"):
        return {}
    cfg = make_default()
    return {
        "camera_pos": _floats(cfg.camera_pos),
        "camera_target": _floats(cfg.camera_target),
        "camera_fovy": float(cfg.camera_fovy),
        "sim_dt": getattr(cfg, "sim_dt", None),
    }


def _recorded_render_settings(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What a dataset's ``camera`` and ``env_kwargs`` attrs say about `RENDER_FIELDS`."""
    camera, kwargs = (_lenient_json(attrs.get(k, "{}")) for k in ("camera", "env_kwargs"))
    out = {}
    if isinstance(camera, dict) and "pos" in camera:
        out |= {
            "camera_pos": tuple(camera["pos"]),
            "camera_target": tuple(camera.get("target", ())),
            "camera_fovy": camera.get("fovy"),
        }
    if isinstance(kwargs, dict) and kwargs.get("sim_dt") is not None:
        out["sim_dt"] = kwargs["sim_dt"]
    return out


def _lenient_json(value: Any) -> Any:
    """`_json`, or None for a value that is no JSON (``camera="synthetic"``)."""
    try:
        return _json(value)
    except (TypeError, ValueError):
        return None


def _json(value: Any) -> Any:
    """HDF5 attrs hold JSON strings (sometimes bytes); dicts pass through."""
    if isinstance(value, bytes):
        value = value.decode()
    return json.loads(value) if isinstance(value, str) else dict(value)

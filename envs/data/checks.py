"""Value checks of a dataset file beyond its layout: actions inside the box they were recorded
in, and attrs that restate one another (the env contract and its copies, counts) agreeing.
`envs.data.hdf5`'s reader applies them when a file is opened.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def recorded_action_bounds(attrs: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of the env contract a file was recorded under (``data`` attr
    ``env_contract``); None for files written before the attr existed."""
    raw = attrs.get("env_contract")
    if raw is None:
        return None
    contract = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return np.asarray(contract["action_low"]), np.asarray(contract["action_high"])


def outside_bounds(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> str:
    """ "" when every action lies in [low, high] up to float32 rounding, else where it does
    not. The recorder clips each action into the env's box, so anything past it was scaled
    or edited after recording, and the model would learn dynamics no env produces."""
    if len(low) != actions.shape[-1] or len(high) != actions.shape[-1]:
        return f"actions have {actions.shape[-1]} dimensions, the recorded bounds {len(low)}"
    tol = 1e-5 + 1e-4 * np.maximum(np.abs(low), np.abs(high))  # float32 round trip
    bad = (actions < low - tol) | (actions > high + tol)
    if not bad.any():
        return ""
    step, dim = (int(i) for i in np.argwhere(bad)[0])
    return (
        f"{int(bad.sum())} action values lie outside the recorded bounds (first at step {step}, "
        f"dimension {dim}: {actions[step, dim]:g} not in [{low[dim]:g}, {high[dim]:g}])"
    )


def restated_problem(attrs: dict[str, Any], frame_height: int | None) -> str:
    """ "" when the root attrs that restate the env contract agree with it (env id, rate,
    image size and the frames' height, the camera pose, env kwargs that are contract fields),
    else the first disagreement: one of two copies was edited."""
    stamp = attrs.get("env_contract")
    if not isinstance(stamp, dict):
        return ""  # written before the stamp: the contract comes from these attrs alone
    restated = [(k, k, attrs.get(k)) for k in ("env_id", "control_hz", "image_size")]
    restated.append(("frames' height", "image_size", frame_height))
    camera, kwargs = attrs.get("camera"), attrs.get("env_kwargs")
    if isinstance(camera, dict):  # wm/Panda*: the camera pose, as in the stamp
        restated += [
            (f"camera.{k}", f"camera_{k}", camera.get(k)) for k in ("pos", "target", "fovy")
        ]
    if isinstance(kwargs, dict):
        restated += [
            (f"env_kwargs.{k}", k, v) for k, v in kwargs.items() if k in stamp and k != "env_id"
        ]
    for name, key, value in restated:
        want = stamp.get(key)
        if value is None or want is None:
            continue
        numeric = not isinstance(value, str) and np.shape(value) == np.shape(want)
        same = (
            np.allclose(np.asarray(value, float), np.asarray(want, float))
            if numeric
            else value == want
        )
        if not same:
            return f"{name}={value!r} but env_contract says {key}={want!r}: one of them was edited"
    return ""


def bookkeeping_problem(
    attrs: dict[str, Any], lengths: list[int], episode_env_ids: dict[str, Any]
) -> str:
    """ "" when the counts and copies agree: ``total`` with the episodes' lengths, robomimic's
    ``env_args`` with ``env_id`` / ``env_kwargs``, each episode's env id with the file's
    (``module:id`` and ``id`` name the same env)."""
    env_id = attrs.get("env_id")
    if "total" in attrs and int(attrs["total"]) != sum(lengths):
        return f"data attr total={attrs['total']} but the episodes hold {sum(lengths)} steps"
    args = attrs.get("env_args")
    if isinstance(args, dict):
        if str(args.get("env_name", env_id)).rpartition(":")[2] != env_id:
            return f"env_args.env_name={args.get('env_name')!r} but env_id={env_id!r}"
        if "env_kwargs" in args and args["env_kwargs"] != attrs.get("env_kwargs"):
            return (
                f"env_args.env_kwargs={args['env_kwargs']} but env_kwargs={attrs.get('env_kwargs')}"
            )
    for name, own in episode_env_ids.items():
        if own is not None and str(own).rpartition(":")[2] != env_id:
            return f"data/{name} has env_id={own!r} but the file env_id={env_id!r}"
    return ""

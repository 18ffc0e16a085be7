"""The env contract of an imported bag: from a registered env id (its bounds, workspace and
camera, as wm-collect records them), or from the options and what the bag tells (rate, image
size, intrinsics from ``camera_info``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from envs.common.contract import EnvContract
from envs.data.rosbag.bag import Bag, RosbagError
from envs.data.rosbag.messages import vertical_fov_deg
from envs.data.rosbag.options import ImportOptions
from envs.data.rosbag.streams import DIM, Stream


def bag_contract(
    opts: ImportOptions,
    control_hz: float,
    first: tuple[np.ndarray, Any],
    camera_info: Stream,
    bag: Bag,
) -> tuple[EnvContract, dict[str, Any]]:
    """The env contract and the dataset's root attrs, from the env id and what the bag says."""
    pixels, msg = first
    height, width = pixels.shape[:2]
    info = camera_info.values[-1] if camera_info.values else None
    fovy = vertical_fov_deg(info) if info is not None else None
    camera = {
        "name": msg.header.frame_id or opts.topics.image,
        "topic": opts.topics.image,
        "frame_id": msg.header.frame_id,
        "width": width,
        "height": height,
        "fovy": fovy,
    }
    if info is not None:
        camera |= {
            "k": list(map(float, info.k)),
            "d": list(map(float, info.d)),
            "distortion_model": info.distortion_model,
        }
    policy = {"name": "rosbag", "bag": str(bag.path), "command_topic": opts.topics.command}
    registered = _registered(opts.env_id)
    size = opts.image_size
    if registered:
        return _registered_contract(
            opts, control_hz, size or (height if height == width else None), fovy, camera, policy
        )
    if size is None:
        if height != width:
            raise RosbagError(
                f"{bag.path}: {opts.topics.image} frames are {height}x{width}, not square: pass "
                "--image-size N (centre crop, then resize, as wm-ros-policy does)"
            )
        size = height
    if opts.action_low is None or opts.action_high is None:
        raise RosbagError(
            f"{bag.path}: env {opts.env_id!r} is not registered, so the bag cannot tell the action "
            "bounds: pass --action-low and --action-high (7 comma-separated values each)"
        )
    contract = EnvContract(
        env_id=opts.env_id,
        control_hz=control_hz,
        action_low=opts.action_low,
        action_high=opts.action_high,
        image_size=size,
        state_dim=DIM,
        action_dim=DIM,
        workspace_low=opts.workspace_low,
        workspace_high=opts.workspace_high,
        camera_fovy=fovy,
    )
    attrs = {
        "env_id": opts.env_id,
        "env_kwargs": "{}",
        "env_args": json.dumps({"env_name": opts.env_id, "type": "rosbag", "env_kwargs": {}}),
        "control_hz": control_hz,
        "camera": json.dumps(camera),
        "image_size": size,
        "policy": json.dumps(policy),
        "env_contract": json.dumps(contract.to_dict()),
    }
    return contract, attrs


def _registered(env_id: str) -> bool:
    import gymnasium as gym

    import envs  # noqa: F401  (registers the wm/* ids)

    return env_id in gym.envs.registry


def _registered_contract(
    opts: ImportOptions,
    control_hz: float,
    size: int | None,
    fovy: float | None,
    camera: dict[str, Any],
    policy: dict[str, Any],
) -> tuple[EnvContract, dict[str, Any]]:
    """A bag recorded from a registered env (``wm-ros-sim``): its contract, as wm-collect's."""
    import gymnasium as gym

    from envs.collect.rollout import dataset_root_attrs

    if opts.action_low is not None or opts.workspace_low:
        raise RosbagError(
            f"env {opts.env_id} fixes the action bounds and workspace; drop those flags"
        )
    kwargs = {"image_size": size} if size is not None else {}
    env = gym.make(opts.env_id, **kwargs)
    try:
        attrs = dataset_root_attrs(opts.env_id, kwargs, env, policy)
    finally:
        env.close()
    contract = EnvContract.from_dict(json.loads(attrs["env_contract"]))
    if abs(contract.control_hz - control_hz) > 1e-6 * control_hz:
        raise RosbagError(
            f"the commands come at {control_hz:g} Hz, env {opts.env_id} steps at "
            f"{contract.control_hz:g} Hz; pass --control-hz {contract.control_hz:g} if the robot was "
            "commanded at that rate (slower commands: planning overran)"
        )
    if (
        fovy is not None
        and contract.camera_fovy is not None
        and abs(fovy - contract.camera_fovy) > 0.5
    ):
        raise RosbagError(
            f"camera_info gives a {fovy:.1f} deg field of view, env {opts.env_id} renders "
            f"{contract.camera_fovy:.1f} deg"
        )
    attrs["camera"] = json.dumps({**json.loads(attrs["camera"]), "ros": camera})
    attrs["policy"] = json.dumps(policy)
    return contract, attrs

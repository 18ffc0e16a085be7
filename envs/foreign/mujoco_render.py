"""Faster and better-framed 64 px frames of any MuJoCo env (the foreign adapter's options).

``simple_geoms``: a rendering-only copy of the model (physics never sees it) that draws

* each body's collision geoms (the primitives or convex hulls its contacts use) in place of its
  visual-only meshes (``contype = conaffinity = 0``), coloured like the body's visual geoms;
* a body that has visual meshes and no collision geom keeps a box the size of each mesh's
  bounds (a decorative link does not vanish);
* no textures (a textured material takes the texture's mean colour), no skybox, shadows, reflections or multisampling.

Menagerie-style models (hundreds of thousands of mesh faces per robot) render several times
faster; the pixels change: arms become capsules and hands boxes, the floor loses its texture
(see envs/README.md for when that matters). Envs drawn with primitives only (Gymnasium's
Reacher, Ant) gain nothing beyond ``fast_render``.

``free_camera``: MuJoCo's free camera (``camera_id=-1``, no ``camera_name``) set by
``distance`` (m), ``azimuth`` / ``elevation`` (degrees), ``lookat`` (x, y, z in m), or ``fit``:
look at the centre of the scene's geoms (planes and geoms larger than the model's extent
left out) from the distance at which their bounding boxes just fill the square frame, seen
from the camera's azimuth and elevation. ``fit`` is computed once, on the first frame, so
the camera never moves during a dataset.
"""

from __future__ import annotations

import copy
from typing import Any

import mujoco
import numpy as np

HIDDEN_GROUP = 5  # geom group the simple model hides visual meshes in (never drawn)
FREE_CAMERA_KEYS = ("distance", "azimuth", "elevation", "lookat", "fit")


def check_free_camera(free_camera: dict[str, Any]) -> None:
    """ValueError naming an unknown key or a bad value of a ``free_camera`` dict."""
    unknown = sorted(set(free_camera) - set(FREE_CAMERA_KEYS))
    if unknown:
        raise ValueError(f"free_camera: unknown keys {unknown}; expected {FREE_CAMERA_KEYS}")
    if "distance" in free_camera and not float(free_camera["distance"]) > 0:
        raise ValueError(f"free_camera.distance={free_camera['distance']}: must be > 0 (m)")
    if "lookat" in free_camera and len(free_camera["lookat"]) != 3:
        raise ValueError(f"free_camera.lookat={free_camera['lookat']}: expected [x, y, z] (m)")
    if free_camera.get("fit") and "distance" in free_camera:
        raise ValueError("free_camera: fit computes the distance; give one or the other")


def simple_geoms_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """A rendering-only copy of ``model`` (see the module docstring)."""
    fast = copy.deepcopy(model)
    visual = (fast.geom_contype == 0) & (fast.geom_conaffinity == 0)  # (ngeom,)
    is_mesh = fast.geom_type == mujoco.mjtGeom.mjGEOM_MESH
    for body in range(fast.nbody):
        geoms = np.flatnonzero(fast.geom_bodyid == body)
        shown, meshes = geoms[~visual[geoms]], geoms[visual[geoms] & is_mesh[geoms]]
        if meshes.size == 0:
            continue
        if shown.size == 0:  # no collision geom to stand in: each mesh becomes its box
            for g in meshes:
                mesh_to_box(fast, int(g))
            continue
        rgba = np.mean([_rgba(fast, int(g)) for g in meshes], axis=0)
        fast.geom_group[meshes] = HIDDEN_GROUP
        for g in shown:
            fast.geom_rgba[g], fast.geom_matid[g] = rgba, -1
            fast.geom_group[g] = min(int(fast.geom_group[g]), 2)  # default groups 0-2 drawn
    _untexture(fast)
    fast.vis.quality.offsamples = 0
    fast.vis.quality.shadowsize = 256  # off anyway (simplify_scene); keeps the GL buffer small
    return fast


def _untexture(model: mujoco.MjModel) -> None:
    """Drop textures; a textured material takes its texture's mean colour (a checker floor
    becomes its mean grey instead of the material's often-white tint)."""
    texids = np.atleast_2d(model.mat_texid)  # (nmat, roles) in MuJoCo 3
    for mat in range(model.nmat):
        tex = next((int(t) for t in texids[mat] if t >= 0), -1)
        if tex >= 0:
            n = model.tex_width[tex] * model.tex_height[tex] * model.tex_nchannel[tex]
            pixels = model.tex_data[model.tex_adr[tex] : model.tex_adr[tex] + n]
            mean = pixels.reshape(-1, model.tex_nchannel[tex])[:, :3].mean(axis=0) / 255.0
            model.mat_rgba[mat, :3] *= mean
    model.mat_texid[:] = -1


def _rgba(model: mujoco.MjModel, geom: int) -> np.ndarray:
    matid = int(model.geom_matid[geom])
    return model.mat_rgba[matid].copy() if matid >= 0 else model.geom_rgba[geom].copy()


def mesh_to_box(model: mujoco.MjModel, geom: int) -> None:
    """Turn mesh geom ``geom`` into the box of its axis-aligned bounds (geom frame)."""
    centre, half = model.geom_aabb[geom, :3].copy(), model.geom_aabb[geom, 3:].copy()
    model.geom_type[geom] = mujoco.mjtGeom.mjGEOM_BOX
    model.geom_dataid[geom] = -1
    model.geom_size[geom] = np.maximum(half, 1e-3)
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, model.geom_quat[geom])
    model.geom_pos[geom] += rot.reshape(3, 3) @ centre  # the aabb centre is in the geom frame


def simplify_scene(scene: mujoco.MjvScene, option: mujoco.MjvOption) -> None:
    """No shadows, reflections or skybox; the hidden group stays hidden."""
    for flag in (
        mujoco.mjtRndFlag.mjRND_SHADOW,
        mujoco.mjtRndFlag.mjRND_REFLECTION,
        mujoco.mjtRndFlag.mjRND_SKYBOX,
    ):
        scene.flags[flag] = 0
    option.geomgroup[HIDDEN_GROUP] = 0


def apply_free_camera(
    cam: mujoco.MjvCamera, free_camera: dict[str, Any], model: mujoco.MjModel, data: mujoco.MjData
) -> None:
    """Set ``cam`` (a free camera) from a ``free_camera`` dict; ``fit`` frames the geoms from
    the camera's (given or default) azimuth and elevation."""
    for key in ("azimuth", "elevation"):
        if key in free_camera:
            setattr(cam, key, float(free_camera[key]))
    if free_camera.get("fit"):
        corners = scene_corners(model, data)  # (N, 3)
        centre = (corners.min(axis=0) + corners.max(axis=0)) / 2
        cam.lookat[:] = centre
        cam.distance = fit_distance(corners - centre, cam.azimuth, cam.elevation, model)
    if "lookat" in free_camera:
        cam.lookat[:] = np.asarray(free_camera["lookat"], np.float64)
    if "distance" in free_camera:
        cam.distance = float(free_camera["distance"])


def fit_distance(
    points: np.ndarray, azimuth: float, elevation: float, model: mujoco.MjModel
) -> float:
    """Smallest free-camera distance (m) at which every point (N, 3), relative to the lookat
    point, is inside the square frame, plus a 5 % margin.

    MuJoCo's free camera looks along ``forward`` from ``lookat - distance * forward``; a point
    p is in view when its offset across the view axis is at most its depth times tan(fovy / 2).
    """
    az, el = np.deg2rad(azimuth), np.deg2rad(elevation)
    forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    up = np.array([-np.sin(el) * np.cos(az), -np.sin(el) * np.sin(az), np.cos(el)])
    right = np.cross(forward, up)
    tan_half = np.tan(np.deg2rad(model.vis.global_.fovy) / 2)
    across = np.maximum(np.abs(points @ right), np.abs(points @ up))  # (N,)
    return float(np.max(points @ forward + across / tan_half) * 1.05)


def scene_corners(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """World corners (8G, 3) of the drawable geoms' bounding boxes.

    Planes, invisible geoms and geoms larger than the model's extent (floors drawn as boxes)
    are left out: they would frame the whole floor instead of the scene on it.
    """
    keep = (model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE) & (model.geom_rgba[:, 3] > 0)
    keep &= model.geom_rbound < model.stat.extent
    if not keep.any():
        return np.asarray(model.stat.center, np.float64)[None] + model.stat.extent * np.eye(3)
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T  # (8, 3)
    aabb = model.geom_aabb[keep]  # (G, 6): centre, half-size in the geom frame
    local = aabb[:, None, :3] + signs[None] * aabb[:, None, 3:]  # (G, 8, 3)
    rot = data.geom_xmat[keep].reshape(-1, 3, 3)  # (G, 3, 3)
    world = np.einsum("gij,gkj->gki", rot, local) + data.geom_xpos[keep][:, None]  # (G, 8, 3)
    return world.reshape(-1, 3)

"""Fast 64 px frames of OGBench's UR5e + Robotiq cube scene (``wm/OGBenchCube-v0``).

OGBench draws the arm and gripper from 34 visual meshes (185k faces) with 4x multisampling
and a 4096 px shadow map; software GL on a CPU core renders that at 2-5 frames/s. The fast
mode draws a copy of the model in which

* the UR5e's visual meshes are hidden and its collision capsules / cylinder (the primitives
  MuJoCo Menagerie ships for contacts) are drawn instead, in the mean grey of the arm's
  materials at alpha 0.1 (OGBench's pixel tasks draw the arm that transparent: mostly its
  shadow shows);
* each Robotiq visual mesh becomes a box the size of its bounding box, same material
  (purple, alpha 0.1; the finger pads keep alpha 0.5);
* the floor plane is drawn as 10 cm instead of 1 cm quads (its texture mapping is the same;
  identical pixels without shadows, 2.5x faster);
* the shadow map is 256 px instead of 4096 px and multisampling is off (aliased edges);
* capsules use 8 slices x 4 stacks.

Physics never sees this model: the env steps OGBench's own model and this one only mirrors
its positions (``mj_kinematics``) before drawing. ``docs/ogbench_cube_frames.png`` shows both
renderings side by side; ``bench/results/envs.md`` the speed.
"""

from __future__ import annotations

import copy

import mujoco
import numpy as np

from envs.foreign.mujoco_render import mesh_to_box

ARM_RGBA = (0.3, 0.32, 0.36, 0.1)  # mean of the UR5e materials; OGBench's pixel-task alpha
FAST_GROUP = 4  # geom group drawn by the fast renderer (hidden geoms go to group 5)
HIDDEN_GROUP = 5
CAMERA = "front_pixels"  # OGBench's pixel-task camera


def fast_render_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """A copy of OGBench's cube model that draws primitives only (see module docstring)."""
    fast = copy.deepcopy(model)
    for g in range(fast.ngeom):
        name = fast.geom(g).name
        group, kind = int(fast.geom_group[g]), int(fast.geom_type[g])
        if group in (0, 1):  # floor, cube, target: drawn as they are
            continue
        fast.geom_group[g] = HIDDEN_GROUP
        is_mesh = kind == mujoco.mjtGeom.mjGEOM_MESH
        if name.startswith("ur5e/robotiq") and group == 2 and is_mesh:
            mesh_to_box(fast, g)
            fast.geom_group[g] = FAST_GROUP
        elif name.startswith("ur5e/robotiq") and "pad" in name and not is_mesh:
            continue  # collision pad boxes would double the visual pads turned into boxes
        elif name.startswith("ur5e/") and group == 3 and not is_mesh:
            fast.geom_rgba[g] = ARM_RGBA  # collision capsules stand in for the arm's meshes
            fast.geom_group[g] = FAST_GROUP
    floor = fast.geom("floor").id
    fast.geom_size[floor, 2] = 0.1  # grid-line spacing used only to tessellate the plane
    fast.vis.quality.shadowsize = 256
    fast.vis.quality.offsamples = 0
    fast.vis.quality.numslices = 8
    fast.vis.quality.numstacks = 4
    return fast


class SceneRenderer:
    """Draws OGBench's cube scene from its ``front_pixels`` camera, fast or as OGBench does.

    ``render(data)`` takes the live physics data and returns a (size, size, 3) uint8 frame.
    The renderer (and its GL context) is created on first use, in the calling process.
    """

    def __init__(self, model: mujoco.MjModel, size: int, fast: bool = True) -> None:
        self.fast = fast
        self.size = size
        self._src = model
        self.model = fast_render_model(model) if fast else model
        self.model.vis.global_.offwidth = max(size, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(size, self.model.vis.global_.offheight)
        self._data = mujoco.MjData(self.model) if fast else None
        self._option = mujoco.MjvOption()
        # OGBench shows groups 0-2 (its visual meshes); the fast model moved what it draws to 4.
        groups = (1, 1, 0, 0, 1, 0) if fast else (1, 1, 1, 0, 0, 0)
        self._option.geomgroup[:] = groups
        self._camera = model.camera(CAMERA).id
        # Geoms drawn unchanged (floor, cube, target): their colours follow the live model.
        self._synced = np.flatnonzero(model.geom_group <= 1)
        self._renderer: mujoco.Renderer | None = None

    def render(self, data: mujoco.MjData) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.size, self.size)
        if self.fast:
            d = self._data
            d.qpos[:] = data.qpos
            d.mocap_pos[:] = data.mocap_pos
            d.mocap_quat[:] = data.mocap_quat
            mujoco.mj_kinematics(self.model, d)
            mujoco.mj_camlight(self.model, d)  # camera and light poses (not in mj_kinematics)
            # The live model's colours change per episode (cube colour): keep them in sync.
            self.model.geom_rgba[self._synced] = self._src.geom_rgba[self._synced]
        else:
            d = data
        self._renderer.update_scene(d, camera=self._camera, scene_option=self._option)
        return self._renderer.render().copy()  # (H, W, 3) uint8

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

"""MJCF for the tabletop scene: a simplified Franka Panda, a table, a cube and a fixed camera.

The arm is written from Franka's published kinematics (Craig's modified DH table, the same frames
as `franka_ros` and the MuJoCo Menagerie model) with capsule/box geoms instead of meshes, so it
loads offline and renders at hundreds of frames/s on a CPU. Set ``robot="menagerie"`` (with
``MENAGERIE_ROOT`` pointing at a MuJoCo Menagerie checkout) to use the meshed model instead.

Frames: the robot base is the world origin and the table top is the plane z = 0, so "base frame"
and "world frame" coincide. The end-effector site ``ee`` sits at the fingertip centre (TCP,
0.1034 m below the flange) and is rotated so that the top-down grasp pose reads as the identity
rotation (Euler angles (0, 0, 0)): the state's Euler angles then never wrap around +-pi.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from dm_control import mjcf

# Modified DH (Craig) for the Panda: (a_{i-1}, d_i, alpha_{i-1}) per joint, metres / radians.
# Source: Franka Control Interface docs, "Robot and interface specifications".
PANDA_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
)
PANDA_FLANGE_D = 0.107  # flange offset along joint 7's axis
PANDA_TCP_D = 0.1034  # flange -> fingertip centre
PANDA_JOINT_LIMITS = np.array(
    [
        [-2.8973, 2.8973],
        [-1.7628, 1.7628],
        [-2.8973, 2.8973],
        [-3.0718, -0.0698],
        [-2.8973, 2.8973],
        [-0.0175, 3.7525],
        [-2.8973, 2.8973],
    ]
)
PANDA_LINK_MASS = (4.97, 0.65, 3.23, 3.59, 1.23, 1.67, 0.74)  # kg, Franka's identified values
# Joint-space position gains (N m / rad) and damping, in the range Menagerie uses; the wrist is
# lighter so it gets lower gains.
ARM_KP = (4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0)
ARM_KV = (150.0, 150.0, 120.0, 120.0, 60.0, 60.0, 60.0)
READY_QPOS = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])

FINGER_MAX = 0.04  # m of travel per finger: 8 cm max opening
CUBE_HALF = 0.025  # m, a 5 cm cube: ~4x4 px at 64 px, still inside the 8 cm grasp
TABLE_EXTENT = (0.9, 0.75)  # half sizes of the table top (x, y), m
TABLE_CENTRE_X = 0.45

WHITE = (0.92, 0.92, 0.92, 1.0)
DARK = (0.2, 0.2, 0.22, 1.0)


def _quat_x(angle: float) -> tuple[float, float, float, float]:
    return (float(np.cos(angle / 2)), float(np.sin(angle / 2)), 0.0, 0.0)


def _add_tcp_site(hand) -> None:
    """The ``ee`` site at the tool centre point, flipped about x so that the top-down pose is
    the identity rotation (see module docstring)."""
    hand.add(
        "site",
        name="ee",
        pos=(0, 0, PANDA_TCP_D),
        quat=_quat_x(np.pi),
        size=(0.005,),
        rgba=(0, 1, 0, 0),
    )


def _dh_child_pos(a: float, d: float, alpha: float) -> tuple[float, float, float]:
    """Origin of frame i in frame i-1 for modified DH: Tx(a) then Rx(alpha) then Tz(d)."""
    return (a, -d * float(np.sin(alpha)), d * float(np.cos(alpha)))


def _add_gripper(hand: mjcf.Element) -> None:
    hand.add(
        "geom",
        name="hand",
        type="box",
        size=(0.02, 0.09, 0.025),
        pos=(0, 0, 0.03),
        rgba=WHITE,
        mass=0.73,
    )
    for side, sign in (("left", 1.0), ("right", -1.0)):
        finger = hand.add("body", name=f"finger_{side}", pos=(0, 0, 0.0584), gravcomp=1)
        finger.add(
            "joint",
            name=f"finger_{side}",
            type="slide",
            axis=(0, sign, 0),
            range=(0, FINGER_MAX),
            damping=10,
        )
        # Inner face at y = +-q; the pad reaches 1 cm past the TCP so the TCP is inside the grasp.
        finger.add(
            "geom",
            name=f"finger_{side}",
            type="box",
            size=(0.01, 0.008, 0.028),
            pos=(0, sign * 0.008, 0.027),
            rgba=DARK,
            mass=0.015,
            friction=(1.5, 0.01, 0.001),
            condim=4,
            contype=1,
            conaffinity=1,
        )


def build_arena(
    robot: str = "simplified",
    camera_pos=(1.35, -0.75, 0.75),
    camera_target=(0.45, 0.0, 0.1),
    fovy: float = 45.0,
) -> mjcf.RootElement:
    """Return the scene's MJCF root; robot is ``"simplified"`` (default) or ``"menagerie"``."""
    root = mjcf.RootElement(model="panda_tabletop")
    root.compiler.angle = "radian"
    root.option.timestep = 0.002
    root.option.integrator = "implicitfast"  # stable with stiff position servos at 2 ms
    root.option.cone = "elliptic"
    # No noslip pass: elliptic cones with condim-4 pads already hold a grasped cube (the
    # pick-place expert holds it for 30 steps), and noslip costs ~25% of each mj_step.
    root.option.noslip_iterations = 0
    vis = root.visual
    vis.quality.shadowsize = 0  # shadows off: 2-3x faster CPU rendering
    vis.quality.offsamples = 0
    vis.get_children("global").offwidth = 256
    vis.get_children("global").offheight = 256
    vis.headlight.ambient = (0.45, 0.45, 0.45)
    vis.headlight.diffuse = (0.5, 0.5, 0.5)
    vis.headlight.specular = (0.0, 0.0, 0.0)
    vis.map.znear = 0.05

    tex = root.asset.add(
        "texture",
        name="grid",
        type="2d",
        builtin="checker",
        width=64,
        height=64,
        rgb1=(0.33, 0.36, 0.40),
        rgb2=(0.30, 0.33, 0.37),
    )
    floor_mat = root.asset.add(
        "material", name="floor", texture=tex, texrepeat=(4, 4), reflectance=0.0
    )
    wb = root.worldbody
    wb.add(
        "light",
        name="key",
        pos=(0.5, -0.5, 2.0),
        dir=(0, 0.3, -1),
        directional=True,
        castshadow=False,
        diffuse=(0.5, 0.5, 0.5),
    )
    wb.add(
        "geom",
        name="floor",
        type="plane",
        size=(3, 3, 0.1),
        pos=(0, 0, -0.75),
        material=floor_mat,
        contype=0,
        conaffinity=0,
    )
    wb.add(
        "geom",
        name="table",
        type="box",
        size=(TABLE_EXTENT[0] / 2 + 0.15, TABLE_EXTENT[1], 0.02),
        pos=(TABLE_CENTRE_X - 0.1, 0, -0.02),
        rgba=(0.62, 0.50, 0.36, 1),
        friction=(1.0, 0.005, 0.0001),
    )
    xz = np.asarray(camera_pos, dtype=float)
    fwd = np.asarray(camera_target, dtype=float) - xz
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, (0, 0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    wb.add("camera", name="front", pos=tuple(xz), xyaxes=tuple(np.r_[right, up]), fovy=fovy)

    cube = wb.add("body", name="cube", pos=(0.5, 0.0, CUBE_HALF))
    cube.add("freejoint", name="cube")
    cube.add(
        "geom",
        name="cube",
        type="box",
        size=(CUBE_HALF,) * 3,
        rgba=(0.85, 0.15, 0.12, 1),
        mass=0.1,
        friction=(1.5, 0.01, 0.001),
        condim=4,
    )

    if robot == "simplified":
        _add_simplified_panda(root)
    elif robot == "menagerie":
        _attach_menagerie_panda(root)
    else:
        raise ValueError(f"robot must be 'simplified' or 'menagerie', got {robot!r}")
    return root


def _add_simplified_panda(root: mjcf.RootElement) -> None:
    link0 = root.worldbody.add("body", name="link0")
    link0.add(
        "geom",
        name="link0",
        type="cylinder",
        size=(0.08, 0.06),
        pos=(0, 0, 0.06),
        rgba=WHITE,
        contype=0,
        conaffinity=0,
        mass=2.0,
    )
    parent = link0
    first_pos = (0.0, 0.0, PANDA_DH[0][1])
    for i, (a, d, alpha) in enumerate(PANDA_DH):
        pos = first_pos if i == 0 else _dh_child_pos(a, d, alpha)
        body = parent.add("body", name=f"link{i + 1}", pos=pos, quat=_quat_x(alpha), gravcomp=1)
        lo, hi = PANDA_JOINT_LIMITS[i]
        body.add(
            "joint", name=f"joint{i + 1}", axis=(0, 0, 1), range=(lo, hi), armature=0.1, damping=1.0
        )
        # Visual segment from the parent's origin to this joint (the link the parent carries).
        if np.linalg.norm(pos) > 1e-6:
            parent.add(
                "geom",
                type="capsule",
                fromto=(0, 0, 0, *pos),
                size=(0.055 if i < 5 else 0.045,),
                rgba=WHITE,
                contype=0,
                conaffinity=0,
                mass=0.0,
            )
        # Joint housing: a dark cylinder along the joint axis, also carrying the link's mass.
        body.add(
            "geom",
            name=f"link{i + 1}",
            type="cylinder",
            size=(0.06 if i < 4 else 0.05, 0.06),
            rgba=DARK if i % 2 else WHITE,
            contype=0,
            conaffinity=0,
            mass=PANDA_LINK_MASS[i],
        )
        parent = body
    flange = (0.0, 0.0, PANDA_FLANGE_D)
    parent.add(
        "geom",
        type="capsule",
        fromto=(0, 0, 0, *flange),
        size=(0.04,),
        rgba=WHITE,
        contype=0,
        conaffinity=0,
        mass=0.0,
    )
    # Hand: rotated -45 deg about the flange axis, as on the real robot.
    hand = parent.add(
        "body", name="hand", pos=flange, quat=(0.9238795, 0, 0, -0.3826834), gravcomp=1
    )
    _add_gripper(hand)
    # TCP: flip about x so the top-down pose is the identity rotation (see module docstring).
    _add_tcp_site(hand)
    root.equality.add(
        "joint", joint1="finger_left", joint2="finger_right", polycoef=(0, 1, 0, 0, 0)
    )
    for i in range(7):
        root.actuator.add(
            "general",
            name=f"joint{i + 1}",
            joint=f"joint{i + 1}",
            gainprm=(ARM_KP[i],),
            biasprm=(0, -ARM_KP[i], -ARM_KV[i]),
            biastype="affine",
            ctrlrange=tuple(PANDA_JOINT_LIMITS[i]),
            ctrllimited=True,
        )
    root.actuator.add(
        "general",
        name="gripper",
        joint="finger_left",
        gainprm=(400.0,),
        biasprm=(0, -400.0, -20.0),
        biastype="affine",
        ctrlrange=(0, FINGER_MAX),
        ctrllimited=True,
        forcerange=(-40, 40),
        forcelimited=True,
    )


def _attach_menagerie_panda(root: mjcf.RootElement) -> None:
    """Attach Menagerie's ``franka_emika_panda/panda.xml`` (meshes; slow to render on CPU)."""
    menagerie = os.environ.get("MENAGERIE_ROOT")
    if not menagerie:
        raise FileNotFoundError(
            "robot='menagerie' needs MENAGERIE_ROOT=/path/to/mujoco_menagerie (git clone https://github.com/google-deepmind/mujoco_menagerie)"
        )
    path = Path(menagerie) / "franka_emika_panda" / "panda.xml"
    if not path.is_file():
        raise FileNotFoundError(f"MENAGERIE_ROOT={menagerie} has no {path.relative_to(menagerie)}")
    panda = mjcf.from_path(str(path))
    for key in panda.find_all("key"):  # keyframes would not match the merged model's qpos
        key.remove()
    panda.option.integrator = None  # the scene's implicitfast applies to the merged model
    for body in panda.find_all("body"):  # gravity compensation, as for the simplified arm
        body.gravcomp = 1
    hand = panda.find("body", "hand")
    _add_tcp_site(hand)
    root.attach(panda)

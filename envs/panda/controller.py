"""Low-level control: end-effector deltas -> joint position targets by damped least squares IK.

The policy speaks in end-effector deltas at the control rate (5 Hz by default). Once per control
step the delta becomes a Cartesian target and differential IK (damped least squares, iterated to
convergence on a scratch ``MjData``) turns it into a joint-position target. The joint servos
(stiff PD actuators, bodies gravity-compensated by MuJoCo's ``gravcomp``) track a linear ramp to
that target at the physics rate. Solving IK once per control step rather than per physics step
keeps ``oracle_cost`` rollouts cheap: one Python call per control step, ``mj_step(nstep=...)``
for the physics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np


def euler_xyz_from_mat(rot: np.ndarray) -> np.ndarray:
    """Extrinsic x-y-z Euler angles (rad) of a rotation matrix (3, 3): R = Rz(c) Ry(b) Rx(a)."""
    b = -np.arcsin(np.clip(rot[2, 0], -1.0, 1.0))
    a = np.arctan2(rot[2, 1], rot[2, 2])
    c = np.arctan2(rot[1, 0], rot[0, 0])
    return np.array([a, b, c])


def mat_from_euler_xyz(euler: np.ndarray) -> np.ndarray:
    """Inverse of `euler_xyz_from_mat`: (3,) rad -> (3, 3)."""
    a, b, c = euler
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class ControllerState:
    """What the controller remembers between control steps (part of the simulator state)."""

    target_rot: np.ndarray = field(default_factory=lambda: np.eye(3))  # (3, 3) commanded
    gripper_cmd: float = 1.0  # commanded opening in [0, 1]; integrates dgripper
    joint_target: np.ndarray = field(default_factory=lambda: np.zeros(7))  # (7,) last IK target

    def pack(self) -> np.ndarray:
        """(17,) float64: target_rot (9), gripper_cmd (1), joint_target (7)."""
        return np.concatenate([self.target_rot.ravel(), [self.gripper_cmd], self.joint_target])

    @classmethod
    def unpack(cls, flat: np.ndarray) -> ControllerState:
        return cls(flat[:9].reshape(3, 3).copy(), float(flat[9]), flat[10:17].copy())

    def copy(self) -> ControllerState:
        return ControllerState(self.target_rot.copy(), self.gripper_cmd, self.joint_target.copy())


class DiffIK:
    """Damped-least-squares IK for the 7 arm joints towards a site pose (position + rotation).

    A null-space term pulls the redundant DoF towards ``rest_qpos`` so repeated solves do not
    drift into elbow-flipped postures.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        site_id: int,
        qpos_adr: np.ndarray,
        dof_adr: np.ndarray,
        joint_limits: np.ndarray,
        rest_qpos: np.ndarray,
        damping: float = 0.05,
        iterations: int = 8,
        tol: float = 1e-3,  # 1 mm / 1 mrad: far below a pixel; reached in 2-3 iterations
    ) -> None:
        self.model, self.site_id = model, site_id
        self.qpos_adr, self.dof_adr = qpos_adr, dof_adr
        self.limits, self.rest_qpos = joint_limits, rest_qpos
        self.damping, self.iterations, self.tol = damping, iterations, tol
        self.data = mujoco.MjData(model)  # scratch: never the simulated data
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._quat = np.zeros(4)
        self._quat_t = np.zeros(4)
        self._err_quat = np.zeros(4)
        self._rot_err = np.zeros(3)

    def solve(self, qpos: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray) -> np.ndarray:
        """Joint targets (7,) that put the site at target_pos (3,) m / target_rot (3, 3)."""
        d = self.data
        d.qpos[:] = qpos
        q = d.qpos[self.qpos_adr].copy()
        mujoco.mju_mat2Quat(self._quat_t, target_rot.ravel())
        eye = np.eye(6) * self.damping**2
        for _ in range(self.iterations):
            d.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(self.model, d)
            mujoco.mj_comPos(self.model, d)
            pos_err = target_pos - d.site_xpos[self.site_id]
            mujoco.mju_mat2Quat(self._quat, d.site_xmat[self.site_id])
            mujoco.mju_negQuat(self._quat, self._quat)
            mujoco.mju_mulQuat(self._err_quat, self._quat_t, self._quat)
            mujoco.mju_quat2Vel(self._rot_err, self._err_quat, 1.0)
            err = np.concatenate([pos_err, self._rot_err])  # (6,) m, rad
            if np.linalg.norm(err) < self.tol:
                break
            mujoco.mj_jacSite(self.model, d, self._jacp, self._jacr, self.site_id)
            jac = np.vstack([self._jacp[:, self.dof_adr], self._jacr[:, self.dof_adr]])  # (6, 7)
            jjt_inv = np.linalg.inv(jac @ jac.T + eye)
            pinv = jac.T @ jjt_inv  # (7, 6)
            dq = pinv @ err
            # Exact (undamped) null-space projector: the damped one leaks into the task and
            # leaves a ~1 mm steady-state error.
            null = np.eye(7) - np.linalg.pinv(jac) @ jac
            dq += null @ (0.1 * (self.rest_qpos - q))
            q = np.clip(q + dq, self.limits[:, 0], self.limits[:, 1])
        return q

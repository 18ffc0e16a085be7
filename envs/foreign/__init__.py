"""Any registered Gymnasium env that renders ``rgb_array`` behind the wm/* interface.

- ``make``: `make_gym_env` and its config (`GymEnvEntry`, `FreeCamera`).
- ``adapter``: `PixelStateAdapter`, pixels + padded state and action.
- ``mujoco_render``: rendering-only simplifications and camera framing for MuJoCo scenes.
- ``env_hooks``: what this repo needs from an env it does not own, registered per class.
- ``pusht``: gym-pusht's Push-T through those hooks.
"""

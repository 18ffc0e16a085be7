"""What several env families share, each module working for any env:

- ``config``: the typed configs of the Panda and DMC envs (Hydra group ``configs/env``).
- ``contract``: `EnvContract`, what an action and a frame mean (rate, bounds, camera).
- ``sim_state``: saving and restoring a simulator; ``distance``: task distance to a goal state.
- ``oracle``: the true-dynamics cost of candidate plans; ``experts``: behaviour policies.
- ``render_exit``: closing offscreen renderers before MuJoCo's EGL teardown.
"""

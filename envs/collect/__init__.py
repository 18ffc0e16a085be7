"""``wm-collect``: recording episodes of an env and a behaviour policy into a dataset.

- ``app``: the command (Hydra entry point, worker pool, resume, merge).
- ``config``: its typed config (`CollectConfig`, one env entry per family).
- ``parts``: the signature that decides whether a finished part may be reused.
- ``rollout``: one episode of a policy in an env, as an `envs.data.episode.Episode`.
"""

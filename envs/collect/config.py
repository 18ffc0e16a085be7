"""Configs for ``wm-collect``, registered in Hydra's ConfigStore.

``configs/env/<name>.yaml`` files extend the ``panda_schema`` / ``dmc_schema`` entries below
(which add the Gymnasium id to the env's own config dataclass); ``configs/collect.yaml``
extends ``collect_schema``. Values are checked in ``__post_init__`` when Hydra's config is
turned into these objects (``OmegaConf.to_object``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from gymnasium.envs.registration import registry
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from envs.common.config import DMCEnvConfig, PandaEnvConfig
from envs.foreign.make import GymEnvEntry, task_name
from envs.ogbench.cube import OGBenchCubeConfig

PANDA_IDS = {
    "wm/PandaReach-v0": "reach",
    "wm/PandaReach-v1": "reach",
    "wm/PandaPush-v0": "push",
    "wm/PandaPickPlace-v0": "pick_place",
}
DMC_IDS = {
    "wm/DMCReacherEasy-v0": "reacher_easy",
    "wm/DMCReacherEasy-v1": "reacher_easy",
    "wm/DMCPointMassEasy-v0": "point_mass_easy",
}


class EntryChecks:
    """What every wm/* collect entry adds to its env's own config dataclass: the ``id`` and
    ``max_episode_steps`` fields (declared by each entry, with its own defaults), the check that
    the id names the entry's ``task``, and the ``gym.make`` keywords."""

    IDS: ClassVar[dict[str, str]] = {}
    """Gymnasium id -> the ``task`` it implies."""

    def __post_init__(self) -> None:
        super().__post_init__()  # the env config's own checks
        if self.IDS.get(self.id) != self.task:
            raise ValueError(f"id={self.id!r} and task={self.task!r} disagree ({self.IDS})")
        if self.max_episode_steps < 0:
            raise ValueError(f"max_episode_steps={self.max_episode_steps}: must be >= 0")
        # An id that fixes a setting (wm/DMCReacherEasy-v1: arm_scale=3) must not be recorded
        # with another value: make_kwargs passes every field, which would override the id's.
        spec = registry.get(self.id)
        for key, value in (spec.kwargs if spec else {}).items():
            if key != "task" and getattr(self, key, value) != value:
                raise ValueError(
                    f"id={self.id!r} draws {key}={value!r} but the config says "
                    f"{key}={getattr(self, key)!r}; use the id's value or another id"
                )

    def make_kwargs(self) -> dict[str, Any]:
        """Keywords for ``gym.make(self.id, ...)`` (JSON-able, stored in the dataset attrs); the
        task comes with the id."""
        kwargs = asdict(self)
        for key in ("id", "max_episode_steps", "task"):
            kwargs.pop(key)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


@dataclass
class PandaEnvEntry(EntryChecks, PandaEnvConfig):
    """A Panda env to collect from: its id plus every `PandaEnvConfig` field as a keyword."""

    IDS: ClassVar[dict[str, str]] = PANDA_IDS
    id: str = "wm/PandaReach-v0"
    """Gymnasium id; must agree with ``task``."""
    max_episode_steps: int = 0
    """Episode length in control steps; 0 keeps the registered default (envs.MAX_EPISODE_STEPS)."""


@dataclass
class DMCEnvEntry(EntryChecks, DMCEnvConfig):
    """A dm_control env to collect from: its id plus every `DMCEnvConfig` field."""

    IDS: ClassVar[dict[str, str]] = DMC_IDS
    id: str = "wm/DMCReacherEasy-v0"
    """Gymnasium id; must agree with ``task``."""
    max_episode_steps: int = 0
    """Episode length in env steps; 0 keeps the registered default."""


@dataclass
class OGBenchCubeEntry(EntryChecks, OGBenchCubeConfig):
    """OGBench's cube env to collect from: its id plus every `OGBenchCubeConfig` field."""

    IDS: ClassVar[dict[str, str]] = {"wm/OGBenchCube-v0": "ogbench_cube"}
    id: str = "wm/OGBenchCube-v0"
    """Gymnasium id (only ``wm/OGBenchCube-v0``)."""
    task: str = "ogbench_cube"
    """Name used in the default output file only."""
    max_episode_steps: int = 0
    """Episode length in control steps (20 Hz); 0 keeps the registered 200."""


POLICY_NAMES = ("expert", "random", "smooth", "mixed", "ogbench_plan", "ogbench_markov")
NOISY_POLICIES = ("expert", "ogbench_plan", "ogbench_markov")  # take policy.noise


@dataclass
class PolicyConfig:
    """Which policy acts in each episode."""

    name: str = "expert"
    """``expert`` (scripted, privileged state; wm/* envs only), ``random`` (uniform in the
    action bounds), ``smooth`` (random with temporally correlated actions: covers more of the
    state space than white noise on momentum-driven envs), ``mixed`` (each episode is expert
    with probability ``expert_fraction``, else random), ``ogbench_plan`` / ``ogbench_markov``
    (OGBench's own cube oracles chaining pick-and-place tasks like its play / noisy datasets;
    wm/OGBenchCube-v0 only, envs/ogbench/oracle.py) or ``module:callable``, a user policy
    factory called per episode as ``callable(env, seed=..., noise=...)`` that returns
    ``policy(obs, info) -> action``."""
    expert_fraction: float = 0.8
    """Share of expert episodes under ``mixed``."""
    noise: float = 0.0
    """Expert action noise, as a fraction of each action bound (std of a Gaussian)."""
    noise_max: float = 0.0
    """If above ``noise``, each expert episode draws its noise uniformly in [noise, noise_max]:
    a mix of clean and failed attempts (around 0.3 the Panda experts mostly fail)."""

    def __post_init__(self) -> None:
        if self.name not in POLICY_NAMES and ":" not in self.name:
            raise ValueError(
                f"policy.name={self.name!r}: expected one of {POLICY_NAMES} or module:callable"
            )
        if not 0.0 <= self.expert_fraction <= 1.0:
            raise ValueError(f"policy.expert_fraction={self.expert_fraction}: expected [0, 1]")
        if self.noise < 0 or self.noise_max < 0:
            raise ValueError(f"policy.noise={self.noise}, noise_max={self.noise_max}: must be >= 0")


@dataclass
class CollectConfig:
    """``wm-collect``: record episodes of one env and policy into one HDF5 file."""

    env: Any = MISSING
    """Env entry (Hydra group ``env``: panda_reach, panda_push, panda_pick_place, dmc_reacher_easy,
    dmc_point_mass_easy, ogbench_cube, or ``gym`` for any Gymnasium id; ``env.id=<foreign id>``
    alone picks ``gym`` too)."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    num_episodes: int = 100
    """Episodes in the finished file; episode k is reset with seed ``seed + k``."""
    num_workers: int = 2
    """Worker processes (spawn); 0 records in the calling process."""
    seed: int = 0
    """Base seed for task instances and policy noise."""
    output: str = "data/${env.task}_${policy.name}.h5"
    """Output file. Finished episodes live in ``<output>.parts/`` until all are done, so
    re-running the same command after an interruption resumes."""
    compression: str = "gzip"
    """HDF5 filter for images and states: ``gzip`` (level 4, robomimic's choice) or ``lzf``."""
    format: str = "hdf5"
    """``hdf5`` (robomimic layout, `envs.data.hdf5`) or ``lerobot``: a LeRobotDataset v3
    directory at ``output`` (`envs.data.lerobot`, lossless video), recorded through
    ``<output>.collect.h5`` so an interrupted run still resumes."""

    def __post_init__(self) -> None:
        if self.num_episodes < 1:
            raise ValueError(f"num_episodes={self.num_episodes}: must be >= 1")
        if self.num_workers < 0:
            raise ValueError(f"num_workers={self.num_workers}: must be >= 0")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be >= 0")
        if self.format not in ("hdf5", "lerobot"):
            raise ValueError(f"format={self.format!r}: expected hdf5 or lerobot")
        if self.format == "lerobot" and self.output.endswith(".h5"):
            raise ValueError(
                f"format=lerobot writes a directory: output={self.output} ends in .h5 "
                "(give output=data/<name>)"
            )
        if self.compression not in ("gzip", "lzf"):
            raise ValueError(f"compression={self.compression!r}: expected gzip or lzf")
        if not isinstance(self.env, PandaEnvEntry | DMCEnvEntry | OGBenchCubeEntry | GymEnvEntry):
            raise ValueError(
                f"env must be a Panda, DMC, OGBench or gym entry, got {type(self.env).__name__}"
            )


def register_configs() -> None:
    """Store the schemas the yaml files extend (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="collect_schema", node=CollectConfig)
    cs.store(group="env", name="panda_schema", node=PandaEnvEntry)
    cs.store(group="env", name="dmc_schema", node=DMCEnvEntry)
    cs.store(group="env", name="gym_schema", node=GymEnvEntry)
    cs.store(group="env", name="ogbench_schema", node=OGBenchCubeEntry)


def foreign_env_node(cfg: DictConfig) -> DictConfig:
    """``env.id=<foreign id>`` on a wm/* entry (the default group) becomes a `GymEnvEntry`.

    Keeps the fields both share (image size, episode length); anything else a foreign env
    needs (camera, make keywords) goes through ``env=gym env.id=...``.
    """
    env = cfg.env
    if OmegaConf.get_type(env) is GymEnvEntry:
        if not env.task:
            env.task = task_name(env.id)  # before ``output`` interpolates it
        return cfg
    if env.id in PANDA_IDS or env.id in DMC_IDS or env.id == OGBenchCubeEntry.id:
        return cfg
    node = OmegaConf.structured(
        GymEnvEntry(id=env.id, image_size=env.image_size, max_episode_steps=env.max_episode_steps)
    )
    with open_dict(cfg):
        cfg.env = node
    return cfg

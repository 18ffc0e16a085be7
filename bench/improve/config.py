"""`wm-improve`'s config, registered in Hydra's ConfigStore as the schema of
configs/improve.yaml (which sets nothing this dataclass already says)."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

ROUND_STRIDE = 100_000
"""Episode indices (in aggregated.h5) and start seeds of round r begin at r x this."""
NEGATIVE_OFFSET = 50_000
"""Hard negatives of a round are numbered from here within the round's stride."""


@dataclass
class ImproveConfig:
    """Planner-in-the-loop improvement rounds (bench/improve/__init__.py says what a round does).

    Defaults fit a round on OGBench cube into about 5-10 CPU-minutes on 2 cores."""

    checkpoint: str = ""
    """Required: the world-model checkpoint of round 0 (e.g. checkpoints/cube_lewm); it must
    hold the recipe it was trained with (`extra.train_config`, written by wm-train)."""
    data: str = ""
    """Required: the checkpoint's training data (HDF5 with simulator states, wm-collect): the
    act and hard-negative starts are drawn from it, and fine-tuning trains on it again."""
    val_data: str = ""
    """Required: a validation set of the same env (HDF5 with simulator states), recorded with
    wm-collect at seeds no training or held-out set uses (scripts/improve_cube.sh: 200000+).
    Never a bench held-out set: what is measured there may not be selected on."""
    out_dir: str = "runs/improve"
    """aggregated.h5, rounds.json, tb/ and one checkpoint per round (round_<r>/)."""
    rounds: int = 3
    """Rounds to reach; a rerun with the same settings resumes where a killed one stopped."""
    goal_offset: int = 25
    """Control steps from a start to its goal frame (the anchors' protocol, bench/anchors.py)."""
    budget: int = 50
    """Control steps per act and validation episode (the anchors' protocol); also the length of
    every recorded episode: a training clip must fit in one (cube: 7 x 5 + 1 frames)."""
    act_episodes: int = 60
    """Episodes the current agent acts, with its recommended planner, per round."""
    explore_noise: float = 0.1
    """Std of the Gaussian noise added to each executed action, as a fraction of the action's
    half-range (clipped into the bounds); the recorded action is the executed one."""
    negative_starts: int = 20
    """Starts (the first act episodes' saved start states) searched by plain CEM for hard
    negatives per round; also the starts of the plan diagnosis."""
    num_negatives: int = 3
    """Plans executed per start: the lowest imagined energies among CEM's candidates that lie
    at least `negative_min_distance` apart."""
    negative_min_distance: float = 0.1
    """Smallest RMS difference between two hard negatives, in units of each action's
    half-range: without it the best few are copies of one plan."""
    negative_horizon: int = 5
    """CEM's planning horizon in blocks (the anchors' 5 blocks of 5 control steps on cube)."""
    negative_samples: int = 300
    """CEM candidates per iteration."""
    negative_iterations: int = 3
    """CEM iterations; every iteration's candidates are ranked."""
    negative_elites: int = 30
    """CEM elites per iteration."""
    diagnosis_candidates: int = 32
    """CEM candidates per start whose real outcome the simulator computes for the plan
    diagnosis: the hard negatives plus a uniform draw from every iteration's candidates."""
    finetune_steps: int = 600
    """Optimiser steps of the world model per round, on the original + aggregated data, from
    the previous round's weights with the checkpoint's own recipe (its learning rate)."""
    finetune_lr_scale: float = 0.3
    """The fine-tune's learning rate as a fraction of the recipe's: a round continues a trained
    model (rounds from cube_lewm at the recipe's full rate lost validation success:
    docs/experiments.md)."""
    encoder_lr_scale: float = 0.1
    """The encoder's learning rate as a fraction of the predictor's (a lewm model's)."""
    actor_steps: int = 1000
    """Steps of the action head, warm-started from the previous round's, on the new model's
    latents of the original + aggregated data (only for checkpoints with a head)."""
    val_episodes: int = 30
    """Closed-loop validation episodes per round on `val_data` (seeds 100000+, as the anchors)."""
    seed: int = 0
    """Seeds the training starts, the exploration noise and the fine-tuning data order."""

    def __post_init__(self) -> None:
        counts = (
            "rounds", "goal_offset", "budget", "act_episodes", "negative_starts",
            "num_negatives", "negative_horizon", "negative_samples", "negative_iterations",
            "negative_elites", "diagnosis_candidates", "finetune_steps", "actor_steps",
            "val_episodes",
        )  # fmt: skip
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        for name in ("explore_noise", "negative_min_distance", "encoder_lr_scale", "seed"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0")
        if not 0 < self.finetune_lr_scale <= 1:
            raise ValueError(f"finetune_lr_scale={self.finetune_lr_scale}: must be in (0, 1]")
        if self.negative_starts > self.act_episodes:
            raise ValueError(
                f"negative_starts={self.negative_starts} > act_episodes={self.act_episodes}: "
                "hard negatives start from the act episodes' saved states"
            )
        if self.num_negatives > self.diagnosis_candidates:
            raise ValueError(
                f"num_negatives={self.num_negatives} > diagnosis_candidates="
                f"{self.diagnosis_candidates}: the negatives are among the diagnosed candidates"
            )
        if self.negative_elites > self.negative_samples:
            raise ValueError(
                f"negative_elites={self.negative_elites} > negative_samples={self.negative_samples}"
            )
        most = NEGATIVE_OFFSET
        if self.act_episodes > most or self.negative_starts * self.num_negatives > most:
            raise ValueError(f"at most {most} act episodes and hard negatives per round")
        if self.goal_offset > self.budget:
            raise ValueError(f"goal_offset={self.goal_offset} > budget={self.budget}")

    def check_required(self) -> None:
        """Name the first required path left empty (Hydra's defaults must build the class)."""
        hints = {
            "checkpoint": "checkpoint=DIR (a wm-train checkpoint, e.g. checkpoints/cube_lewm)",
            "data": "data=PATH (its training data, HDF5 with simulator states)",
            "val_data": "val_data=PATH (a validation set recorded with wm-collect at other "
            "seeds; scripts/improve_cube.sh builds one)",
            "out_dir": "out_dir=DIR",
        }
        for name, hint in hints.items():
            if not getattr(self, name):
                raise ValueError(f"{name} is required: {hint}")


def register_configs() -> None:
    """Store the schema configs/improve.yaml extends (idempotent)."""
    ConfigStore.instance().store(name="improve_schema", node=ImproveConfig)

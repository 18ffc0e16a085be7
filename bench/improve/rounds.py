"""The round loop of `wm-improve`: its phases, rounds.json, TensorBoard and the summary lines.

A phase whose figures are in rounds.json is done and skipped, so a killed run repeats at most
the phase it was in, and even that only in part: episodes already recorded are kept
(bench/improve/episodes.py) and a fine-tune resumes from its last checkpoint. The file is
rewritten atomically after every phase.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from agent.checkpoint import read_checkpoint
from agent.config import apply_recommended
from agent.factory import make_agent
from agent.rollout import run_episode
from agent.stats import wilson_interval
from bench.anchors import SEED, env_protocol_config
from bench.improve.config import NEGATIVE_OFFSET, ROUND_STRIDE, ImproveConfig
from bench.improve.episodes import AggregatedData, RecordingPolicy, record
from bench.improve.finetune import finetune
from bench.improve.negatives import negative_figures, search_start
from bench.improve.task import ROUNDS, ImproveTask, open_task
from envs.data.storage import atomic_write

Log = Callable[[str], None]


class RoundsFile:
    """rounds.json: the settings of the run and, per round, each finished phase's figures."""

    def __init__(self, path: Path, cfg: ImproveConfig) -> None:
        self.path = path
        settings = {k: v for k, v in asdict(cfg).items() if k != "rounds"}
        if path.exists():
            self.data = json.loads(path.read_text())
            old = self.data.get("settings", {})
            diff = [f"{k}={old.get(k)!r} there, {v!r} here" for k, v in settings.items()
                    if old.get(k) != v]  # fmt: skip
            if diff:
                raise ValueError(
                    f"{path} belongs to a run with other settings ({'; '.join(diff)}): rerun "
                    "with its settings (only `rounds` may change) or choose another out_dir"
                )
        else:
            self.data = {"settings": settings, "rounds": {}}

    def round(self, r: int) -> dict[str, Any]:
        return self.data["rounds"].setdefault(str(r), {})

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.data, indent=1).encode())


def run(cfg: ImproveConfig, log: Log = print) -> dict[str, Any]:
    """Reach `cfg.rounds` rounds (after validating round 0, the given checkpoint); returns
    rounds.json's content."""
    task = open_task(cfg)
    try:
        return run_rounds(task, log)
    finally:
        task.close()


def run_rounds(task: ImproveTask, log: Log) -> dict[str, Any]:
    cfg, out = task.cfg, task.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rounds = RoundsFile(out / ROUNDS, cfg)
    data = AggregatedData(task.aggregated, task.root_attrs)
    board = Board(out / "tb")
    checkpoint = Path(cfg.checkpoint)

    def phase(r: int, name: str, work: Callable[..., dict[str, Any]], *args: Any) -> None:
        rec = rounds.round(r)
        if name not in rec:  # done phases are skipped: a rerun resumes where a kill stopped
            log(f"round {r}: {name}")
            rec[name] = timed(work, *args)
            rounds.save()

    rounds.round(0).setdefault("checkpoint", str(checkpoint))
    phase(0, "validate", validate, task, checkpoint)
    board.round(0, rounds)
    log(summary_line(0, rounds.round(0)))
    for r in range(1, cfg.rounds + 1):
        rounds.round(r).setdefault("checkpoint_in", str(checkpoint))
        agents = LazyAgents(task, checkpoint)
        phase(r, "act", act, task, agents, data, r, log)
        phase(r, "negatives", negatives, task, agents, data, r, log)
        target = out / f"round_{r}"
        train_data = [cfg.data, str(task.aggregated)]
        work = out / "work" / f"round_{r}"
        phase(r, "finetune", finetune, checkpoint, train_data, work, target, cfg, cfg.seed + r)
        checkpoint = target
        rounds.round(r)["checkpoint"] = str(target)
        phase(r, "validate", validate, task, target)
        board.round(r, rounds)
        log(summary_line(r, rounds.round(r)))
    board.close()
    return rounds.data


def timed(work: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`work(*args)`'s figures with the CPU-minutes (every thread of this process) and
    wall-minutes it took; a phase resumed after a kill counts only its last run."""
    cpu, wall = time.process_time(), time.perf_counter()
    figures = work(*args)
    return figures | {
        "cpu_min": (time.process_time() - cpu) / 60,
        "wall_min": (time.perf_counter() - wall) / 60,
    }


# ---------------------------------------------------------------------------------- agents
def protocol_agent(
    task: ImproveTask, checkpoint: Path, env: Any, overrides: list[str] | None = None
) -> Any:
    """The learned agent of `checkpoint` under the anchors' protocol (bench/anchors.py) with its
    recommended settings (`extra.recommended_eval`), except the keys `overrides` set."""
    overrides = list(overrides or [])
    info = read_checkpoint(checkpoint)
    cfg = env_protocol_config(
        task.env_name, "learned", str(checkpoint), overrides, task.cfg.goal_offset, task.cfg.budget
    )
    cfg, _ = apply_recommended(cfg, overrides, info.recommended)
    return make_agent(cfg, env, info)


class LazyAgents:
    """A checkpoint's agents, built when a phase first needs them: the one it plans with (its
    recommended planner) and plain CEM over the same model (the hard negatives' search)."""

    def __init__(self, task: ImproveTask, checkpoint: Path) -> None:
        self.task, self.checkpoint = task, checkpoint
        self._acting = self._cem = None

    @property
    def acting(self) -> Any:
        if self._acting is None:
            self._acting = protocol_agent(self.task, self.checkpoint, self.task.train_env)
        return self._acting

    @property
    def cem(self) -> Any:
        if self._cem is None:
            cfg = self.task.cfg
            overrides = [
                "planner.proposal=none",
                f"planner.horizon={cfg.negative_horizon}",
                f"planner.num_samples={cfg.negative_samples}",
                f"planner.iterations={cfg.negative_iterations}",
                f"planner.num_elites={cfg.negative_elites}",
            ]
            self._cem = protocol_agent(self.task, self.checkpoint, self.task.train_env, overrides)
        return self._cem


# ---------------------------------------------------------------------------------- phases
def start_seed(cfg: ImproveConfig, r: int, i: int) -> int:
    """The protocol=dataset start of round r's episode i (its hard negatives share it)."""
    return cfg.seed + r * ROUND_STRIDE + i


def act(task: ImproveTask, agents: LazyAgents, data: AggregatedData, r: int, log: Log) -> dict:
    """The agent acts, with exploration noise, on `act_episodes` training starts."""
    cfg, env = task.cfg, task.train_env
    first = r * ROUND_STRIDE
    indices = list(range(first, first + cfg.act_episodes))

    def make(index: int):
        i = index - first
        rng = np.random.default_rng([cfg.seed, r, 0, i])
        low, high = env.action_space.low, env.action_space.high
        policy = RecordingPolicy(agents.acting, low, high, cfg.explore_noise, rng)
        attrs = {"env_id": task.root_attrs["env_id"], "policy": "wm-improve act", "kind": "act",
                 "round": r, "noise": cfg.explore_noise, "checkpoint": str(agents.checkpoint)}  # fmt: skip
        return record(env, policy, start_seed(cfg, r, i), task.task_seeds, attrs)

    data.record_missing(indices, make, log)
    attrs = [data.episode_attrs()[i] for i in indices]
    return {
        "episodes": len(attrs),
        "success": float(np.mean([a["success_any"] for a in attrs])),
        "success_end": float(np.mean([a["success"] for a in attrs])),
        "planner_errors": int(sum(a["planner_errors"] for a in attrs)),
    }


def negatives(
    task: ImproveTask, agents: LazyAgents, data: AggregatedData, r: int, log: Log
) -> dict:
    """Plain CEM from the first `negative_starts` act starts: the `num_negatives` diverse
    favourites executed and recorded, the diagnosis of its candidates stored with them."""
    cfg, env = task.cfg, task.train_env
    low, high = env.action_space.low, env.action_space.high
    n, first = cfg.num_negatives, r * ROUND_STRIDE + NEGATIVE_OFFSET
    every = []
    for j in range(cfg.negative_starts):
        indices = [first + j * n + k for k in range(n)]
        every += indices
        if set(indices) <= data.held():
            continue
        seed = start_seed(cfg, r, j)
        search = search_start(
            env, agents.cem, seed, cfg, np.random.default_rng([cfg.seed, r, 1, j])
        )
        diagnosis = {f"diag_{key}": value for key, value in search.diagnosis.items()}
        for k, index in enumerate(indices):
            rng = np.random.default_rng([cfg.seed, r, 2, j, k])
            policy = RecordingPolicy(
                agents.acting, low, high, cfg.explore_noise, rng, prefix=search.plans[k]
            )
            attrs = {"env_id": task.root_attrs["env_id"], "policy": "wm-improve negative",
                     "kind": "negative", "round": r, "rank": k, "noise": cfg.explore_noise,
                     "checkpoint": str(agents.checkpoint), "plan_steps": len(search.plans[k]),
                     "imagined_energy": float(search.energies[k]),
                     "plan_distance": float(search.plan_distances[k]),
                     "diverse": search.diverse, **diagnosis}  # fmt: skip
            data.add(index, record(env, policy, seed, task.task_seeds, attrs))
        log(f"  start {j + 1}/{cfg.negative_starts}: favourite {search.plan_distances[0]:.3f} "
            f"real, Spearman {search.diagnosis['spearman']:.2f}")  # fmt: skip
    data.commit()
    measure = env.get_wrapper_attr("task_distance").describe()
    figures = negative_figures([data.episode_attrs()[i] for i in every], measure["threshold"])
    return figures | {"unit": measure["unit"], "threshold": measure["threshold"],
                      "aggregated_episodes": len(data.episode_attrs())}  # fmt: skip


def validate(task: ImproveTask, checkpoint: Path) -> dict:
    """Closed-loop success of `checkpoint` with its recommended planner (reached within the
    budget, the anchors' headline) on `val_episodes` starts of the validation set, seeds
    100000+, with its 95 % Wilson interval; also on the starts whose goal moves every task
    position (the object, not only the arm)."""
    cfg = task.cfg
    agent = protocol_agent(task, checkpoint, task.val_env)
    results = [
        run_episode(task.val_env, agent, SEED + i, cfg.budget) for i in range(cfg.val_episodes)
    ]
    hits = sum(res.success_any for res in results)
    moving = [res for res in results if res.every_position_moves]
    return {
        "episodes": len(results),
        "success": hits / len(results),
        "ci95": list(wilson_interval(hits, len(results))),
        "success_end": float(np.mean([res.success for res in results])),
        "mean_final_distance": float(np.mean([res.final_distance for res in results])),
        "moving_episodes": len(moving),
        "success_moving": (float(np.mean([res.success_any for res in moving])) if moving else None),
        "planner_errors": int(sum(res.planner_errors for res in results)),
    }


# ---------------------------------------------------------------------------------- logs
class Board:
    """out_dir/tb: one point per round and figure; each round is written once."""

    def __init__(self, path: Path) -> None:
        self.path, self.writer = path, None

    def round(self, r: int, rounds: RoundsFile) -> None:
        rec = rounds.round(r)
        if rec.get("logged"):
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.path))
        for key, value in round_scalars(rec).items():
            self.writer.add_scalar(key, value, r)
        self.writer.flush()
        rec["logged"] = True
        rounds.save()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def round_scalars(rec: dict[str, Any]) -> dict[str, float]:
    """The TensorBoard scalars of one round's record (absent figures are left out)."""
    picks = {
        "act/success": ("act", "success"),
        "act/episodes": ("act", "episodes"),
        "negatives/episodes": ("negatives", "episodes"),
        "diagnosis/spearman": ("negatives", "spearman"),
        "diagnosis/dist_imagined_favourite": ("negatives", "dist_imagined_favourite"),
        "diagnosis/dist_real_favourite": ("negatives", "dist_real_favourite"),
        "diagnosis/imagined_favourite_fails": ("negatives", "imagined_favourite_fails"),
        "validate/success": ("validate", "success"),
        "validate/success_moving": ("validate", "success_moving"),
        "finetune/actor_val_goal_mse": ("finetune", "actor_val_goal_mse"),
    }
    out = {key: rec.get(p, {}).get(f) for key, (p, f) in picks.items()}
    if "validate" in rec:
        out["validate/success_lo"], out["validate/success_hi"] = rec["validate"]["ci95"]
    for name in ("act", "negatives", "finetune", "validate"):
        out[f"cpu_min/{name}"] = rec.get(name, {}).get("cpu_min")
    return {k: float(v) for k, v in out.items() if v is not None}


def summary_line(r: int, rec: dict[str, Any]) -> str:
    """One line per round: what was added, the diagnosis, validation, CPU-minutes per phase."""
    val = rec["validate"]
    lo, hi = val["ci95"]
    validation = f"validation {val['success']:.0%} [{lo:.0%}, {hi:.0%}] of {val['episodes']}"
    cpu = ", ".join(
        f"{name} {rec[name]['cpu_min']:.1f}"
        for name in ("act", "negatives", "finetune", "validate")
        if name in rec
    )
    if r == 0:
        return f"round 0 ({rec['checkpoint']}): {validation} | CPU-min {cpu}"
    act, neg = rec["act"], rec["negatives"]
    unit = neg["unit"]
    spearman = "n/a" if neg["spearman"] is None else f"{neg['spearman']:.2f}"
    return (
        f"round {r}: +{act['episodes'] + neg['episodes']} episodes ({act['episodes']} act, "
        f"success {act['success']:.0%}; {neg['episodes']} hard negatives from {neg['starts']} "
        f"starts) | CEM candidates: Spearman {spearman}, imagined favourite ends "
        f"{neg['dist_imagined_favourite']:.3f} {unit} off vs the real favourite's "
        f"{neg['dist_real_favourite']:.3f} {unit}, imagined favourite fails "
        f"{neg['imagined_favourite_fails']:.0%} | {validation} | CPU-min {cpu}"
    )

"""The real-robot loop rehearsed in simulation, end to end over Fast DDS (issue 33):

1. ``wm-ros-sim`` driven by the scripted teleoperator (`agent.ros.teleop_node`: our expert on
   the command topic) while ``wm-ros-record`` records the contract topics into a bag;
2. ``python -m envs.data.rosbag import`` turns the bag into an HDF5 dataset;
3. ``wm-train`` trains a world model on it;
4. ``wm-ros-policy`` with that checkpoint drives a fresh ``wm-ros-sim`` on held-out seeds.

Every stage runs the command a user would run on a robot, as its own process; only the sim and
the teleoperator stand in for the robot and its operator. Stage 1 runs in real time (one
command per control period), so its length is the data's length in robot time.

    python -m agent.ros.rehearsal                        # small: 20 episodes, ~6 min
    python -m agent.ros.rehearsal --size full            # the HDF5 reach recipe, ~1 h
    python -m agent.ros.rehearsal --episodes 5 -- steps=20   # after --: wm-train overrides

``--size full`` records the 300 episodes of scripts/make_checkpoints.sh's reach data (the same
seeds, policies and noise, so the bag imports into data/reach_mixed.h5's episodes, frame for
frame) and trains that recipe's stage 1 on them. The output folder holds the bag, the dataset,
the run, every node's log and ``rehearsal.json``. tests/test_ros_rehearsal.py runs a tiny one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Bool, Float64MultiArray, UInt32

from agent.ros.harness import NodeProcess, Observer, pick_domain_id

# scripts/make_checkpoints.sh, stage 1 (encoder + pixels-only predictor end to end); small
# runs the same model for a ninth of the steps.
LEWM = ("--config-name=train_lewm", "world_model.predictor.use_state=false", "sigreg_proj=128")
RECIPE_TRAIN = (*LEWM, "steps=1800", "optim.decay_steps=600")
SMALL_TRAIN = (*LEWM, "steps=200", "optim.decay_steps=70")
START_TIMEOUT_S = 120.0  # node start-up on a loaded 2-core machine (torch, MuJoCo, discovery)


@dataclass(frozen=True)
class RehearsalConfig:
    """One rehearsal. Units: episodes, control steps; seeds as wm-collect's."""

    out: str = "runs/ros_rehearsal"
    """Output folder (must not exist): bag/, dataset.h5, run/, logs/, rehearsal.json."""
    env_id: str = "wm/PandaReach-v0"
    """The simulated robot (a wm/Panda* id)."""
    episodes: int = 20
    """Teleoperated episodes recorded; episode k is wm-collect's episode k (seed ``seed + k``)."""
    seed: int = 0
    episode_steps: int = 0
    """Steps per recorded episode; 0 = the env's registered length (25 for PandaReach)."""
    policy: str = "mixed"
    """The teleoperator's policy, as wm-collect's ``policy.*`` (the reach recipe's values)."""
    expert_fraction: float = 0.7
    noise: float = 0.1
    noise_max: float = 0.6
    storage: str = "mcap"
    """Bag storage: ``mcap`` or ``sqlite3``."""
    train_args: tuple[str, ...] = SMALL_TRAIN
    """wm-train arguments besides ``data``, ``out_dir`` and ``cache_dir``."""
    policy_episodes: int = 2
    """Episodes the trained policy drives the sim for, from seed ``policy_seed`` on."""
    policy_seed: int = 1000
    """Held-out: the probe episodes' collection seed, never trained on."""
    policy_steps: int = 0
    """Step budget of each policy episode; 0 = the env's registered length."""

    def __post_init__(self) -> None:
        for name in ("episodes", "policy_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        for name in ("episode_steps", "policy_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0 (0 = the env's)")
        if self.storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage={self.storage!r}: 'mcap' or 'sqlite3'")


SIZES = {
    "small": RehearsalConfig(),
    "full": RehearsalConfig(episodes=300, train_args=RECIPE_TRAIN, policy_episodes=10),
}


@dataclass
class PolicyRun:
    """What ``wm-ros-policy`` did on the sim: steps to success per episode (None: not within
    the budget), the commands it planned, and all it sent (the held zeros too)."""

    solved_steps: list[int | None] = field(default_factory=list)
    planned: int = 0
    commands: int = 0
    moving_commands: int = 0
    in_bounds: bool = True


@dataclass
class Rehearsal:
    """Where a rehearsal left its artefacts, and what the policy did."""

    bag: Path
    dataset: Path
    checkpoint: Path
    import_lines: list[str]
    policy: PolicyRun


class RehearsalError(RuntimeError):
    """A stage failed; the message names it and ends with its log."""


def run_rehearsal(cfg: RehearsalConfig) -> Rehearsal:
    """Record -> import -> train -> deploy (module docstring); writes ``out/rehearsal.json``."""
    out = Path(cfg.out)
    if out.exists():
        raise FileExistsError(f"{out} exists; remove it or choose another --out")
    (out / "logs").mkdir(parents=True)
    bag = record_bag(cfg, out)
    dataset = out / "dataset.h5"
    lines = run_stage(
        "import",
        ["-m", "envs.data.rosbag", "import", str(bag), "--out", str(dataset)]
        + ["--env-id", cfg.env_id],
        out,
    )
    run_stage(
        "train",
        ["-m", "world_model.training.train", *cfg.train_args, f"data=[{dataset}]"]
        + [f"out_dir={out / 'run'}", f"cache_dir={out / 'cache'}"],
        out,
    )
    checkpoint = out / "run" / "world_model"
    policy = drive_policy(cfg, checkpoint, out)
    summary = {
        "config": asdict(cfg),
        **{"bag": str(bag), "dataset": str(dataset), "checkpoint": str(checkpoint)},
        "import": lines,
        "policy": asdict(policy),
    }
    (out / "rehearsal.json").write_text(json.dumps(summary, indent=2))
    return Rehearsal(bag, dataset, checkpoint, lines, policy)


def record_bag(cfg: RehearsalConfig, out: Path) -> Path:
    """Stage 1: sim + recorder + teleoperator on a fresh domain; the closed bag's path."""
    domain, logs, bag = pick_domain_id(salt=1), out / "logs", out / "bag"
    sim_args = ["-p", f"env_id:={cfg.env_id}", "-p", f"seed:={cfg.seed}"]
    teleop_args = [
        *sim_args,
        *("-p", f"episodes:={cfg.episodes}", "-p", f"episode_steps:={cfg.episode_steps}"),
        *("-p", f"policy:={cfg.policy}", "-p", f"expert_fraction:={float(cfg.expert_fraction)}"),
        *("-p", f"noise:={float(cfg.noise)}", "-p", f"noise_max:={float(cfg.noise_max)}"),
        *("-p", "min_subscribers:=2"),  # the sim and the recorder
    ]
    rec_args = ["-p", f"output:={bag}", "-p", f"storage:={cfg.storage}"]
    steps = cfg.episode_steps or _registered_steps(cfg.env_id)
    expected_s = cfg.episodes * (steps + 3) / 5.0  # 5 Hz (the wm/Panda* rate), a reset each
    print(f"[record] {cfg.episodes} episodes into {bag} (~{expected_s / 60:.0f} min)", flush=True)
    nodes = [
        NodeProcess("agent.ros.sim_node", sim_args, domain, logs / "sim.log"),
        NodeProcess("agent.ros.recorder_node", rec_args, domain, logs / "record.log"),
    ]
    try:
        # The teleoperator starts once the recorder listens: a command sent before the
        # recorder's first frame and state is one the import must leave out.
        if not _wait_for_subscribers(
            domain, {"/wm/action": 2, "/wm/state": 1, "/camera/image_raw": 1}
        ):
            raise RehearsalError(f"record: sim or recorder did not start\n{nodes[1].log_tail()}")
        teleop = NodeProcess("agent.ros.teleop_node", teleop_args, domain, logs / "teleop.log")
        nodes.append(teleop)
        try:
            code = teleop.proc.wait(timeout=START_TIMEOUT_S + 2 * expected_s)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            raise RehearsalError(f"record: the teleoperator failed ({code})\n{teleop.log_tail()}")
    finally:
        for node in reversed(nodes):  # the recorder's SIGINT closes the bag (metadata.yaml)
            node.stop(timeout_s=60)
    if not (bag / "metadata.yaml").is_file():
        raise RehearsalError(f"record: {bag} was not closed\n{nodes[1].log_tail()}")
    return bag


def _wait_for_subscribers(domain: int, wanted: dict[str, int]) -> bool:
    """Wait until each topic has its number of subscribers on the domain's graph."""
    obs = Observer(domain, "wm_rehearsal_graph")
    try:
        counts = obs.node.count_subscribers
        return obs.wait_for(lambda: all(counts(t) >= n for t, n in wanted.items()), START_TIMEOUT_S)
    finally:
        obs.close()


def run_stage(name: str, args: list[str], out: Path) -> list[str]:
    """Run ``python <args>`` as the user would, output to ``logs/<name>.log``; its lines."""
    print(f"[{name}] python {' '.join(args)}", flush=True)
    log = out / "logs" / f"{name}.log"
    with open(log, "w") as f:
        code = subprocess.run(
            [sys.executable, *args], stdout=f, stderr=subprocess.STDOUT
        ).returncode
    lines = log.read_text(errors="replace").splitlines()
    if code != 0:
        raise RehearsalError(f"{name} failed ({code}):\n" + "\n".join(lines[-30:]))
    return lines


def drive_policy(cfg: RehearsalConfig, checkpoint: Path, out: Path) -> PolicyRun:
    """Stage 4: ``wm-ros-policy`` on a fresh sim from ``policy_seed``, one episode per seed."""
    from world_model.checkpoint import read_config

    contract = read_config(checkpoint).env  # the node loads the weights, not this process
    low, high = np.asarray(contract.action_low), np.asarray(contract.action_high)
    budget = cfg.policy_steps or _registered_steps(cfg.env_id)
    domain, logs = pick_domain_id(salt=2), out / "logs"
    print(f"[policy] {checkpoint} on {cfg.policy_episodes} episode(s) of {budget} steps")
    obs = Observer(domain, "wm_rehearsal")
    for msg_type, topic in [(DiagnosticArray, "/wm/status"), (Float64MultiArray, "/wm/action"), (Bool, "/wm/success"), (UInt32, "/wm/sim/steps")]:  # fmt: skip
        obs.record(msg_type, topic)
    sim_args = ["-p", f"env_id:={cfg.env_id}", "-p", f"seed:={cfg.policy_seed}"]
    sim = NodeProcess("agent.ros.sim_node", sim_args, domain, logs / "policy_sim.log")
    policy_args = ["-p", f"checkpoint:={checkpoint}", "-p", "autostart:=false"]
    node = NodeProcess("agent.ros.policy_node", policy_args, domain, logs / "policy.log")
    run = PolicyRun()
    try:
        up = obs.wait_for(lambda: _status(obs).get("goal_received") == "True", START_TIMEOUT_S)
        if not up or not obs.messages("/wm/sim/steps"):
            raise RehearsalError(f"policy: nodes did not come up\n{node.log_tail()}")
        since = time.monotonic()
        for episode in range(cfg.policy_episodes):
            if episode:
                _trigger(obs, "/wm/sim/reset")
                time.sleep(1.0)  # the new goal, latched, reaches the policy
            solved, planned = _policy_episode(obs, budget)
            run.solved_steps.append(solved)
            run.planned += planned
        actions = np.array([m.data for _, m in obs.messages("/wm/action", since)])
    finally:
        node.stop()
        sim.stop()
        obs.close()
    run.commands = len(actions)
    run.moving_commands = int(np.count_nonzero(np.any(actions != 0, axis=1))) if run.commands else 0
    run.in_bounds = bool(np.all((actions >= low - 1e-9) & (actions <= high + 1e-9)))
    return run


def _policy_episode(obs: Observer, budget: int) -> tuple[int | None, int]:
    """Start the policy until success or ``budget`` planned commands, stop it; the sim steps
    it took to succeed (None: not within the budget) and the commands it planned.

    A stopped policy sends zero commands, which step the sim too, so the budget counts the
    policy's own commands (its status) and success counts sim steps from the start."""

    def steps() -> int:
        return obs.messages("/wm/sim/steps")[-1][1].data

    def planned() -> int:
        return int(_status(obs).get("commands", 0))

    def solved_at() -> float | None:
        return next((t for t, m in obs.messages("/wm/success", start) if m.data), None)

    steps0, planned0, start = steps(), planned(), time.monotonic()
    _trigger(obs, "/wm/start")
    # Generous wall time: CPU planning may take longer than a control period.
    obs.wait_for(lambda: solved_at() is not None or planned() - planned0 >= budget, 60 + 5 * budget)
    _trigger(obs, "/wm/stop")
    if (t := solved_at()) is None:
        return None, planned() - planned0
    # The sim publishes success, then the step count: the first count received after success.
    obs.wait_for(lambda: bool(obs.messages("/wm/sim/steps", t)), 5)
    taken = obs.messages("/wm/sim/steps", t)[0][1].data - steps0
    return (taken if taken <= budget else None), planned() - planned0


def _trigger(obs: Observer, service: str) -> None:
    if not obs.call_trigger(service):
        raise RehearsalError(f"policy: {service} answered failure")


def _status(obs: Observer) -> dict[str, str]:
    msgs = obs.messages("/wm/status")
    if not msgs:
        return {}
    s = msgs[-1][1].status[0]
    return {"message": s.message, **{kv.key: kv.value for kv in s.values}}


def _registered_steps(env_id: str) -> int:
    from envs import MAX_EPISODE_STEPS

    return MAX_EPISODE_STEPS[env_id]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m agent.ros.rehearsal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", help=f"output folder (default {RehearsalConfig.out})")
    parser.add_argument("--episodes", type=int, help="recorded episodes (small 20, full 300)")
    parser.add_argument("--seed", type=int, help="seed of the first recorded episode (0)")
    parser.add_argument("--episode-steps", type=int, help="steps per episode (0: the env's)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"))
    parser.add_argument("--policy-episodes", type=int, help="held-out policy episodes")
    parser.add_argument("train_args", nargs="*", help="after --: wm-train overrides, appended")
    args = vars(parser.parse_args(argv))
    size, extra = args.pop("size"), tuple(args.pop("train_args"))
    try:
        cfg = replace(SIZES[size], **{k: v for k, v in args.items() if v is not None})
        result = run_rehearsal(replace(cfg, train_args=(*cfg.train_args, *extra)))
    except (ValueError, OSError, RehearsalError) as err:
        sys.exit(f"python -m agent.ros.rehearsal: error: {err}")
    print("\n".join(result.import_lines[-2:]))
    print(summary_line(result.policy))
    print(
        "Success on held-out dataset goals, as the HDF5-trained row measures it: the commands\n"
        "of `python -m bench headline --commands reach-dataset`, with the checkpoint\n"
        f"{result.checkpoint}"
    )


def summary_line(run: PolicyRun) -> str:
    solved = [s for s in run.solved_steps if s is not None]
    return (
        f"[policy] reached {len(solved)} of {len(run.solved_steps)} goals (steps {solved}); "
        f"{run.planned} planned; {run.commands} commands sent, {run.moving_commands} moving, "
        f"{'all' if run.in_bounds else 'NOT all'} within the checkpoint's bounds"
    )


if __name__ == "__main__":
    main()

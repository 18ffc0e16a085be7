"""``python -m envs.data.rosbag info BAG`` lists a rosbag2 bag's topics;
``python -m envs.data.rosbag import BAG --out DATASET.h5 --env-id ID`` turns it into a training
dataset (docs/ros.md)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from configs.cli import one_line_errors
from envs.data.rosbag.bag import Topics, open_bag


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace("[", "").replace("]", "").split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated numbers") from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m envs.data.rosbag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="topics, types, counts and rates of a bag")
    info.add_argument("bag")
    imp = sub.add_parser("import", help="bag -> HDF5 dataset (envs.data.hdf5 layout)")
    imp.add_argument("bag")
    imp.add_argument("--out", required=True, help="the .h5 file to write (must not exist)")
    imp.add_argument("--env-id", required=True, help="wm/PandaReach-v0 (its contract) or any name")
    imp.add_argument("--control-hz", type=float, help="default: the median command rate")
    imp.add_argument("--action-low", type=_floats, help="7 values; for an unregistered env id")
    imp.add_argument("--action-high", type=_floats)
    imp.add_argument("--workspace-low", type=_floats, default=(), help="xyz (m), optional")
    imp.add_argument("--workspace-high", type=_floats, default=())
    imp.add_argument("--image-size", type=int, help="square side; default: the env's or camera's")
    imp.add_argument("--gap-periods", type=float, default=3.0,
                     help="without a marker topic, a longer pause between commands starts an episode")  # fmt: skip
    imp.add_argument("--max-frame-age", type=float, help="s; older frames count late (1 period)")
    imp.add_argument("--clip-actions", action="store_true", help="clip commands outside the bounds")
    imp.add_argument("--clock", choices=("header", "receive"), default="header",
                     help="frame times: camera header stamps, or the bag's receive times")  # fmt: skip
    imp.add_argument("--namespace", default="", help="prefix of every default topic (/arm1)")
    for f in fields(Topics):
        flag = f"--{f.name.replace('_', '-')}-topic"
        imp.add_argument(flag, dest=f"{f.name}_topic", help=f"default {getattr(Topics(), f.name)}")
    return parser


def _info(path: str) -> None:
    with open_bag(path) as bag:
        span = (bag.end_ns - bag.start_ns) / 1e9
        print(f"{bag.path}: {bag.storage}, {span:.2f} s, {len(bag.topics)} topics")
        for topic in sorted(bag.topics.values(), key=lambda t: t.name):
            rate = f"{topic.count / span:.1f} Hz" if span > 0 else "-"
            print(f"  {topic.name:32s} {topic.msgtype:36s} {topic.count:8d}  {rate}")
        contract = Topics()
        found = [
            f"{f.name}={getattr(contract, f.name)}"
            for f in fields(Topics)
            if getattr(contract, f.name) in bag.topics
        ]
        print(f"contract topics found: {', '.join(found) or 'none'}")
        for cut in bag.cuts:
            print(f"truncated bag: {cut}")


@one_line_errors("python -m envs.data.rosbag")
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "info":
        _info(args.bag)
        return 0
    from envs.data.rosbag import ImportOptions, import_bag

    topics = Topics().under(args.namespace)
    overrides = {f.name: getattr(args, f"{f.name}_topic") for f in fields(Topics)}
    topics = Topics(**{k: v or getattr(topics, k) for k, v in overrides.items()})
    opts = ImportOptions(
        env_id=args.env_id,
        topics=topics,
        control_hz=args.control_hz,
        action_low=args.action_low,
        action_high=args.action_high,
        workspace_low=args.workspace_low,
        workspace_high=args.workspace_high,
        image_size=args.image_size,
        gap_periods=args.gap_periods,
        max_frame_age_s=args.max_frame_age,
        clip_actions=args.clip_actions,
        clock=args.clock,
    )
    report = import_bag(args.bag, args.out, opts)
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m envs.data.lerobot export|import|check``: convert between wm-collect's HDF5 files and
LeRobotDataset v3 directories, or validate a directory (every episode decoded)."""

from __future__ import annotations

import argparse
import sys
import time

from configs.cli import one_line_errors
from envs.data.lerobot.layout import LeRobotKeys


def _keys(args: argparse.Namespace) -> LeRobotKeys:
    return LeRobotKeys(args.camera_key, args.state_key, args.action_key, args.image_size)


@one_line_errors("python -m envs.data.lerobot")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m envs.data.lerobot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="HDF5 file -> LeRobot v3 directory")
    export.add_argument("h5")
    export.add_argument("out")
    export.add_argument("--codec", default="lossless", help="lossless (default) or av1")
    for name, help_ in (
        ("import", "LeRobot v3 directory -> HDF5 file"),
        ("check", "read every episode of a LeRobot directory"),
    ):
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument("src")
        if name == "import":
            cmd.add_argument("h5")
        cmd.add_argument("--camera-key", default=None)
        cmd.add_argument("--state-key", default="observation.state")
        cmd.add_argument("--action-key", default="action")
        cmd.add_argument("--image-size", type=int, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "export":
        from envs.data.lerobot.convert import export_hdf5

        out = export_hdf5(args.h5, args.out, args.codec)
    elif args.command == "import":
        from envs.data.lerobot.convert import import_lerobot

        out = import_lerobot(args.src, args.h5, _keys(args))
    else:
        from envs.data.lerobot.read import LeRobotReader

        reader = LeRobotReader(args.src, _keys(args))
        frames = sum(len(reader.frames(i)) for i in range(len(reader)))  # decodes every video
        print(f"{args.src}: {len(reader)} episodes, {frames} frames")
        print(f"keys: {reader.attrs['lerobot_keys']}")
        print(f"env contract: {reader.attrs['env_contract']}")
        verified = reader.checksums_verified
        print(
            f"checksums: sha256 of {verified} files verified"
            if verified is not None
            else "checksums: none recorded (not written by this exporter): a flipped bit in "
            "a parquet or video file cannot be detected"
        )
        out = args.src
    print(f"{out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

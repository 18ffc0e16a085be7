"""Which leftover ``<output>.parts/demo_K.h5`` files a ``wm-collect`` run may reuse.

A resumed collection merges the parts an interrupted run left behind. That is only right when
the part holds exactly the episode this command would record: a part from another env, policy,
seed or image size merged silently gives a file whose root attrs describe one dataset and whose
episodes are another. Each part therefore carries the *signature* of the episode it holds
(every env field, env revision, policy settings, base seed, episode index), and a run refuses
any part whose signature differs from its own, naming the differing fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import h5py

from envs.data.episode import DatasetError

SIGNATURE_ATTR = "collect_signature"


class StalePartError(DatasetError):
    """A leftover part was written by a different command than the one resuming."""


def part_signature(cfg: Any, index: int) -> dict[str, Any]:
    """What determines episode ``index`` of a `CollectConfig` (JSON-normalised: tuples -> lists).

    ``num_episodes``, ``num_workers`` and ``compression`` are left out on purpose: they do not
    change an episode's content, so a run asking for more episodes resumes a shorter one.
    """
    from envs import ENV_REVISION

    signature = {
        "env": asdict(cfg.env),  # id, image_size, max_episode_steps and every env kwarg
        "env_revision": ENV_REVISION,
        "policy": asdict(cfg.policy),
        "seed": cfg.seed,
        "index": index,
    }
    return json.loads(json.dumps(signature))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, sub in value.items():
        out |= _flatten(sub, f"{prefix}.{key}" if prefix else str(key))
    return out


def signature_mismatch(
    found: dict[str, Any], wanted: dict[str, Any], what: str = "part"
) -> list[str]:
    """``"key: part has X, this command Y"`` for every differing (dotted) key."""
    a, b = _flatten(found), _flatten(wanted)
    return [
        f"{key}: {what} has {a.get(key, '<absent>')!r}, this command {b.get(key, '<absent>')!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, "<absent>") != b.get(key, "<absent>")
    ]


def read_signature(part: Path) -> dict[str, Any] | None:
    """The signature stored in a part, None for parts of an older wm-collect.

    Raises `DatasetError` when the part cannot be read at all.
    """
    try:
        with h5py.File(part, "r") as f:
            raw = f.attrs.get(SIGNATURE_ATTR)
    except OSError as err:
        raise DatasetError(f"{part}: unreadable part ({err})") from err
    if raw is None:
        return None
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def check_parts(parts: dict[int, Path], cfg: Any, parts_dir: Path) -> dict[int, Path]:
    """The reusable parts among ``parts`` (index -> path); refuse any from another command.

    Unreadable parts (a damaged disk; atomic writes never leave half a part) are deleted and
    re-recorded, which is safe because episodes are deterministic in (seed, index).
    """
    fresh = f"delete {parts_dir} (rm -r) to start fresh, or choose another output"
    usable = {}
    for index, part in sorted(parts.items()):
        try:
            found = read_signature(part)
        except DatasetError as err:
            print(f"{err}: deleting it, the episode will be recorded again")
            part.unlink()
            continue
        if found is None:
            raise StalePartError(
                f"{part} carries no collect signature (left by an older wm-collect), so it "
                f"cannot be checked against this command: {fresh}"
            )
        diff = signature_mismatch(found, part_signature(cfg, index))
        if diff:
            raise StalePartError(
                f"{part} was recorded by a different command than this one "
                f"({'; '.join(diff)}): refusing to merge it; {fresh}"
            )
        usable[index] = part
    return usable


def check_existing_output(reader: Any, cfg: Any) -> None:
    """Refuse a finished output that another command wrote (count, env id and kwargs, policy,
    seed)."""
    policy = json.loads(json.dumps(asdict(cfg.policy)))
    problems = []
    if len(reader) != cfg.num_episodes:
        problems.append(f"{len(reader)} episodes, num_episodes={cfg.num_episodes}")
    if reader.attrs.get("env_id") != cfg.env.id:
        problems.append(f"env_id {reader.attrs.get('env_id')!r}, this command {cfg.env.id!r}")
    kwargs = json.loads(json.dumps(cfg.env.make_kwargs()))
    if reader.attrs.get("env_kwargs") != kwargs:
        diff = signature_mismatch(reader.attrs.get("env_kwargs") or {}, kwargs, "file")
        problems.append("env kwargs " + "; ".join(diff))
    if reader.attrs.get("policy") != policy:
        problems.append(f"policy {reader.attrs.get('policy')}, this command {policy}")
    if len(reader) and reader.episode_attrs(0).get("seed") != cfg.seed:
        problems.append(f"first seed {reader.episode_attrs(0).get('seed')}, seed={cfg.seed}")
    if problems:
        raise FileExistsError(
            f"{reader.path} exists but was not written by this command ({'; '.join(problems)}); "
            "choose another output or delete it"
        )

"""The architecture as the import graph shows it (docs/architecture.md): data flows one way
(envs -> world_model -> planners -> agent -> bench), inside world_model the networks never reach
into training or the heads, no module imports itself back through a cycle, and envs/ stays a
few folders by family rather than a flat room. These hold by construction only while someone
checks them.

Every module is read, sub-packages included, and every import in it counts: top-level ones,
function-local ones (a lazy import still ties two modules together) and ``TYPE_CHECKING`` ones.
File length is not checked: split a file when it holds two ideas, not when it crosses a number.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("envs", "world_model", "planners", "agent", "bench", "configs")
# What each layer may import from the project; anything else is an upward import.
ALLOWED = {
    "configs": {"configs"},
    "envs": {"envs", "configs"},
    "world_model": {"world_model", "envs", "configs"},
    "planners": {"planners", "configs"},
    "agent": {"agent", "planners", "world_model", "envs", "configs"},
    "bench": {"bench", "agent", "planners", "world_model", "envs", "configs"},
}
# Inside world_model: the networks and the checkpoint reader stand alone; heads may use the
# networks; training may use everything.
WM_ALLOWED = {
    "model": {"model", "top"},
    "heads": {"heads", "model", "top"},
    "top": {"top", "model", "heads"},
    "training": {"training", "model", "heads", "top"},
}
MAX_ENVS_ENTRIES = 12  # envs/: README, __init__ and one entry per family or shared package


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Project modules `path` imports (function-local ones too unless `top_level_only`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in CORE}


def core_files(root: Path = ROOT) -> list[Path]:
    """Every module of the layers, at any depth of sub-package."""
    return sorted(p for pkg in CORE if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py"))


def wm_area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in WM_ALLOWED else "top"


def upward_imports(root: Path = ROOT) -> list[str]:
    """``"<module> imports <module>"`` for every import that runs back up the layers."""
    wrong = []
    for path in core_files(root):
        me = module_name(path, root)
        for imported in sorted(project_imports(path)):
            if imported.split(".")[0] not in ALLOWED[me.split(".")[0]]:
                wrong.append(f"{me} imports {imported}")
            elif me.startswith("world_model.") and imported.startswith("world_model."):
                mine, theirs = wm_area(me), wm_area(imported)
                if theirs not in WM_ALLOWED[mine] and imported != "world_model":
                    wrong.append(f"{me} ({mine}) imports {imported} ({theirs})")
    return wrong


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body.

    A package counts as its ``__init__``: ``from envs import ENV_REVISION`` depends on
    envs/__init__.py, so a package that imported its own submodule back would be a cycle."""
    files = {module_name(p, root): p for p in core_files(root)}
    graph: dict[str, set[str]] = {}
    for me, path in files.items():
        graph[me] = set()
        for imported in project_imports(path):
            # `from pkg import name` names a module or an attribute: keep what is a module.
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != me:
                graph[me].add(imported)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_upward_imports() -> None:
    wrong = upward_imports()
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_envs_is_a_few_folders_not_a_flat_room() -> None:
    entries = sorted(p.name for p in (ROOT / "envs").iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_ENVS_ENTRIES, (
        f"envs/ has {len(entries)} top-level entries (at most {MAX_ENVS_ENTRIES}): {entries}; "
        "put the new file in the family it belongs to (envs/README.md)"
    )


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checks_see_a_planted_upward_import(tmp_path: Path) -> None:
    planted = tmp_path / "x.py"
    planted.write_text("import os\nfrom agent.mpc import MPCAgent\n\ndef f():\n    import envs\n")
    assert project_imports(planted) == {"agent.mpc", "agent.mpc.MPCAgent", "envs"}
    assert project_imports(planted, top_level_only=True) == {"agent.mpc", "agent.mpc.MPCAgent"}
    assert wm_area("world_model.training.trainer") == "training"
    assert wm_area("world_model.checkpoint") == "top"
    # Deep in a sub-package and inside a function, an upward import is still one.
    root = _plant(
        tmp_path / "repo",
        {
            "envs/__init__.py": "",
            "envs/data/__init__.py": "",
            "envs/data/lerobot/__init__.py": "",
            "envs/data/lerobot/read.py": "def f():\n    from world_model.config import X\n",
            "world_model/__init__.py": "",
            "world_model/config.py": "import envs.data\n",
        },
    )
    assert upward_imports(root) == [
        "envs.data.lerobot.read imports world_model.config",
        "envs.data.lerobot.read imports world_model.config.X",
    ]


def test_the_checks_see_a_planted_import_cycle(tmp_path: Path) -> None:
    """The circle envs/data opened: the HDF5 module opening LeRobot directories lazily while
    the LeRobot reader imports the HDF5 module. A lazy import does not hide it."""
    root = _plant(
        tmp_path,
        {
            "envs/__init__.py": "",
            "envs/data/__init__.py": "",
            "envs/data/hdf5.py": (
                "def open_dataset(path):\n"
                "    from envs.data.lerobot.read import LeRobotReader\n"
                "    return LeRobotReader(path)\n"
            ),
            "envs/data/lerobot/__init__.py": "",
            "envs/data/lerobot/read.py": "from envs.data.hdf5 import DatasetError\n",
        },
    )
    assert find_cycle(import_graph(root)) == [
        "envs.data.hdf5",
        "envs.data.lerobot.read",
        "envs.data.hdf5",
    ]
    # A package importing back the submodule that imports it is a cycle too.
    (root / "envs/data/lerobot/read.py").write_text("from envs.data import open_dataset\n")
    (root / "envs/data/__init__.py").write_text("from envs.data.lerobot.read import X\n")
    (root / "envs/data/hdf5.py").write_text("")
    assert find_cycle(import_graph(root)) == ["envs.data", "envs.data.lerobot.read", "envs.data"]


def test_the_architecture_doc_names_every_registered_id() -> None:
    """docs/architecture.md counted 5 ids that `import envs` registers when there were 9."""
    import re

    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    ours = {
        name for name, spec in gym.registry.items() if str(spec.entry_point).startswith("envs.")
    }
    doc = (ROOT / "docs" / "architecture.md").read_text()
    listed = re.search(r"`import envs` registers (\d+) Gymnasium ids: (.*?)\n\s*\(", doc, re.S)
    assert listed, "docs/architecture.md: the sentence listing the registered ids is gone"
    named = set(re.findall(r"`([\w/.-]+-v\d+)`", listed.group(2)))
    assert named == ours and int(listed.group(1)) == len(ours), (named ^ ours, listed.group(1))


def test_no_merge_conflict_markers_are_committed():
    """A merge once committed `<<<<<<< HEAD` into scripts/README.md: no tracked text file may
    hold a conflict marker line."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    markers = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)
    found = []
    for name in tracked:
        path = ROOT / name
        text_file = path.suffix in {".py", ".md", ".sh", ".yaml", ".toml", ".txt", ".cfg"}
        if text_file and path.is_file() and markers.search(path.read_text(errors="replace")):
            found.append(name)
    assert not found, found

"""The architecture as the import graph shows it (docs/architecture.md): data flows one way
(envs -> world_model -> planners -> agent), inside world_model the networks never reach into
training or the heads, no module imports itself back through a cycle, and no core file grows
past 400 lines. These hold by construction only while someone checks them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
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


def core_files() -> list[Path]:
    return sorted(p for pkg in CORE for p in (ROOT / pkg).rglob("*.py"))


def wm_area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in WM_ALLOWED else "top"


def test_no_upward_imports() -> None:
    wrong = []
    for path in core_files():
        me = module_name(path)
        for imported in project_imports(path):
            if imported.split(".")[0] not in ALLOWED[me.split(".")[0]]:
                wrong.append(f"{me} imports {imported}")
            elif me.startswith("world_model.") and imported.startswith("world_model."):
                mine, theirs = wm_area(me), wm_area(imported)
                if theirs not in WM_ALLOWED[mine] and imported != "world_model":
                    wrong.append(f"{me} ({mine}) imports {imported} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    files = {module_name(p): p for p in core_files()}
    graph: dict[str, set[str]] = {}
    for me, path in files.items():
        graph[me] = set()
        for imported in project_imports(path, top_level_only=True):
            # `from pkg import name` names a module or an attribute: keep what is a module.
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != me and not me.startswith(imported + "."):
                graph[me].add(imported)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_core_file_over_400_lines() -> None:
    long = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in core_files()
        if (n := len(p.read_text().splitlines())) > 400
    ]
    assert not long, "\n".join(long)


def test_the_checks_see_a_planted_upward_import(tmp_path: Path) -> None:
    planted = tmp_path / "x.py"
    planted.write_text("import os\nfrom agent.mpc import MPCAgent\n\ndef f():\n    import envs\n")
    assert project_imports(planted) == {"agent.mpc", "agent.mpc.MPCAgent", "envs"}
    assert project_imports(planted, top_level_only=True) == {"agent.mpc", "agent.mpc.MPCAgent"}
    assert wm_area("world_model.training.trainer") == "training"
    assert wm_area("world_model.checkpoint") == "top"

"""The package's layers: libraries and rules import without Home Assistant, arrows point one way.

See docs/ARCHITECTURE.md. The import graph is read from the source (imports under `if
TYPE_CHECKING` are for the type checker only and are left out), so a new module is checked the day
it is added.
"""

from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

import pytest

import custom_components.print_farm as package  # Home Assistant is loaded: the pytest plugin imported it

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "custom_components" / "print_farm"
ROOT = "custom_components.print_farm"
SAMPLE = REPO / "tests" / "fileinfo" / "samples" / "cura_5.6_marlin.gcode"

# Where each subpackage may import from in the package (besides itself). `const` is a leaf every
# layer may use; the faces at the package top may import anything. A new subpackage must be added
# here, in its layer, before its modules pass.
LIBRARIES = ("protocols", "fileinfo")
ALLOWED = {
    "protocols": set(),
    "fileinfo": set(),
    "rules": set(),
    "runtime": {"rules", *LIBRARIES},
    "api": {"runtime", "rules", *LIBRARIES},
}
WITHOUT_HOME_ASSISTANT = ("rules", *LIBRARIES)
# Imports by name at run time hide from this test: only where there is no other way.
DYNAMIC_IMPORTS_ALLOWED = {"fileinfo/__main__.py"}
# Modules Home Assistant loads by name, and the entity platforms: these may stand at the top.
HA_NAMED = {"__init__", "config_flow", "diagnostics", "repairs", "logbook", "intent", "device_trigger"}
PLATFORMS = {"binary_sensor", "button", "camera", "event", "image", "light", "select", "sensor", "switch"}
MAX_TOP_MODULES = 10
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([ROOT, *parts])


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    """The subpackage a module is in, "const", or "top" for the faces at the package top."""
    first = module.removeprefix(ROOT).lstrip(".").split(".")[0]
    if first in ALLOWED or first == "const":
        return first
    return "top"


def _imports(module: str, path: Path, *, type_checking: bool = False) -> set[str]:
    """Every name `module` imports, anywhere in it (functions too), as absolute dotted names.

    Imports under `if TYPE_CHECKING` are for the type checker only and are left out, unless asked.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if not type_checking and isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            skipped.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        found.update(targets)
    return found


def _graph() -> dict[str, set[str]]:
    """Which package modules each package module imports when it runs."""
    modules = _modules()
    return {
        name: {target for target in _imports(name, path) if target in modules and target != name}
        for name, path in modules.items()
    }


def test_every_subpackage_has_a_layer() -> None:
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages - set(ALLOWED) == set()
    assert not [
        path
        for path in PACKAGE.iterdir()
        # Data folders, no code: the voice sentences (runtime/voice.py installs them on request).
        if path.is_dir() and path.name not in {*ALLOWED, "translations", "__pycache__", "sentences"}
    ]


def test_arrows_point_one_way() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if (layer := _layer(module)) in ALLOWED
        for target in targets
        if _layer(target) not in {layer, "const", *ALLOWED[layer]}
    ]
    assert wrong == []
    graph = _graph()
    assert graph[f"{ROOT}.const"] == set()  # the leaf everything may import


def test_rules_and_libraries_never_name_home_assistant() -> None:
    """Not even inside a function or for the type checker: these run where Home Assistant is not."""
    wrong = {
        name: sorted(
            target
            for target in _imports(name, path, type_checking=True)
            if target.split(".")[0] == "homeassistant"
        )
        for name, path in _modules().items()
        if _layer(name) in WITHOUT_HOME_ASSISTANT
    }
    assert {name: targets for name, targets in wrong.items() if targets} == {}


def test_no_import_by_name() -> None:
    """`importlib.import_module` and `__import__` would hide an arrow from the tests above."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in {
                "importlib.import_module",
                "__import__",
                "import_module",
            }:
                found.append(str(path.relative_to(PACKAGE)))
    assert set(found) - DYNAMIC_IMPORTS_ALLOWED == set()


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                cycles.append(sorted([node, *component]))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_rooms_stay_small() -> None:
    top = sorted(
        path.stem for path in PACKAGE.glob("*.py") if path.stem not in HA_NAMED and path.stem not in PLATFORMS
    )
    assert len(top) <= MAX_TOP_MODULES, top
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_libraries_and_rules_import_without_home_assistant() -> None:
    """Every module of rules/, protocols/ and fileinfo/, through the package, in a fresh interpreter."""
    names = sorted(name for name in _modules() if _layer(name) in WITHOUT_HOME_ASSISTANT)
    assert f"{ROOT}.rules.books.runs" in names
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'homeassistant'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("entry", [["-m", f"{ROOT}.fileinfo"], ["custom_components/print_farm/fileinfo"]])
def test_fileinfo_command_without_home_assistant(entry: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *entry, str(SAMPLE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"slicer": "Cura"' in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert len(imported) > 50  # importtime did report
    assert [name for name in imported if name.split(".")[0] == "homeassistant"] == []


def test_entry_points_load_on_first_use_without_home_assistant() -> None:
    """Imported by plain Python, the package loads Home Assistant's entry points only when asked."""
    script = (
        "import sys\n"
        f"import {ROOT} as package\n"
        "print('homeassistant' in sys.modules)\n"
        "print(package.async_setup_entry.__module__, 'homeassistant' in sys.modules)\n"
        "print(hasattr(package, 'async_migrate_entry'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split("\n")[:3] == ["False", f"{ROOT}.integration True", "False"]


def test_entry_points_load_with_the_package_under_home_assistant() -> None:
    """Home Assistant imports integrations in its import executor: the entry points load there, not later in the loop."""
    for name in ("CONFIG_SCHEMA", "async_setup", "async_setup_entry", "async_unload_entry"):
        assert name in vars(package), name

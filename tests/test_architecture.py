"""The layering of docs/architecture.md holds: no module imports a layer above its own."""

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "i2moe"
DOC = ROOT / "docs" / "architecture.md"


@functools.cache
def documented_layers() -> dict[str, tuple[int, str]]:
    """Module prefix -> (rank, layer name), from the table in docs/architecture.md."""
    layers = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| (\d+) \| (\w+) \| (.+?) \|", line)
        if match:
            rank, name = int(match.group(1)), match.group(2)
            for module in re.findall(r"`(i2moe[\w.]*)`", match.group(3)):
                layers[module] = (rank, name)
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every i2moe module ``path`` imports, at the top or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # ``from i2moe.cli import fit`` imports the module i2moe.cli.fit
            for alias in node.names:
                found.add(f"{module}.{alias.name}")
    return {m for m in found if m == "i2moe" or m.startswith("i2moe.")}


def existing(module: str, modules: set[str]) -> str | None:
    """The longest prefix of ``module`` that is a module of the package."""
    while module and module not in modules:
        module = module.rpartition(".")[0]
    return module or None


def layer_of(module: str, layers: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    while module:
        if module in layers:
            return layers[module]
        module = module.rpartition(".")[0]
    return None


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        targets = {existing(m, set(MODULES)) for m in imported_modules(path)}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def test_the_documented_table_is_read():
    layers = documented_layers()
    assert {"i2moe.spec", "i2moe.model", "i2moe.data", "i2moe.cli"} <= set(layers)
    assert len({name for _, name in layers.values()}) >= 7


def test_every_module_belongs_to_a_layer():
    layers = documented_layers()
    unplaced = [m for m in MODULES if m != "i2moe" and layer_of(m, layers) is None]
    assert not unplaced, f"modules in no layer of docs/architecture.md: {unplaced}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_layer_above_or_beside_its_own(name):
    layers = documented_layers()
    if name == "i2moe":
        return  # the package's public facade re-exports from every layer
    rank, layer = layer_of(name, layers)
    for target in sorted(import_graph()[name]):
        assert target != "i2moe", f"{name} imports the package facade i2moe"
        target_rank, target_layer = layer_of(target, layers)
        assert target_rank < rank or target_layer == layer, (
            f"{name} (layer {layer}, rank {rank}) imports {target} "
            f"(layer {target_layer}, rank {target_rank})"
        )


def test_the_modules_form_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target.startswith(node + "."):
                continue  # a package's __init__ importing its own submodules
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: a core module importing the command line is caught."""
    layers = documented_layers()
    assert layer_of("i2moe.model", layers)[0] < layer_of("i2moe.cli.main", layers)[0]
    fake = tmp_path / "i2moe" / "model.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from i2moe.cli.main import main\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "i2moe"
    try:
        assert "i2moe.cli.main" in imported_modules(fake)
    finally:
        PACKAGE = saved

"""srlib's folders are its layers: a module imports only from its own package or from layers below it."""

import ast
from pathlib import Path

import pytest

SRLIB = Path(__file__).resolve().parents[1] / "srlib"

# Bottom to top. Packages on one level do not import each other.
LAYERS = [
    {"errors"},
    {"atomic", "make"},
    {"method", "data", "notebook", "book"},
    {"run"},
    {"results"},
    {"reproduce"},
    {"cli", "bench"},
    {"__main__"},
]
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """``srlib.run.train`` -> ``run``; ``srlib.errors`` -> ``errors``."""
    return module.split(".")[1]


def srlib_imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "srlib":
            if node.module == "srlib":  # from srlib import __version__
                continue
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("srlib."):
                    yield node.lineno, alias.name


MODULES = sorted(p for p in SRLIB.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {p.relative_to(SRLIB).parts[0].removesuffix(".py") for p in MODULES} - {"__init__"}
    assert parts <= set(LEVEL), f"add {sorted(parts - set(LEVEL))} to LAYERS"


def test_the_top_level_holds_packages_and_entry_modules_only():
    modules = {p.name for p in SRLIB.glob("*.py")}
    assert modules <= {"__init__.py", "__main__.py", "errors.py", "atomic.py", "make.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(SRLIB).as_posix())
def test_imports_go_down(path):
    own = path.relative_to(SRLIB).parts[0].removesuffix(".py")
    for line, module in srlib_imports(path):
        target = part_of(module)
        if target == own:
            continue
        assert LEVEL[target] < LEVEL[own], (f"{path.relative_to(SRLIB.parent)}:{line} imports {module}: "
                                             f"{own} (layer {LEVEL[own]}) may not import {target} (layer {LEVEL[target]})")


def module_name(path: Path) -> str:
    """``srlib/run/train.py`` -> ``srlib.run.train``; ``srlib/run/__init__.py`` -> ``srlib.run``."""
    parts = path.relative_to(SRLIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the srlib modules it imports (at the top or inside a function), each existing module once."""
    names = {module_name(p): p for p in MODULES}
    graph = {}
    for name, path in names.items():
        targets = set()
        for _, module in srlib_imports(path):
            while module not in names:  # srlib.run.config.EvalConfig is no module; its parent is
                module = module.rsplit(".", 1)[0]
            targets.add(module)
        graph[name] = targets - {name}
    return graph


def test_no_circle_of_imports():
    """No module reaches itself through imports, lazy ones included (a circle is a layer inside a layer undone)."""
    graph, state, circles = import_graph(), {}, []

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


TESTS = Path(__file__).resolve().parent


def test_tests_are_grouped_by_layer():
    """tests/<part>/ tests srlib/<part> (make: srlib/make.py); tests/chapters the executed chapters; here: this file."""
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(LEVEL) | {"chapters"}, f"{sorted(folders - set(LEVEL) - {'chapters'})} is not a part of srlib"
    stray = sorted(p.name for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name)
    assert stray == [], f"move {stray} into the folder of the srlib part they test"

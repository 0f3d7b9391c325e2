"""The layout rules of docs/architecture.md, checked on the source tree.

- Rooms a reader can hold in mind: no module under ``src/`` over 700 lines and no function over 120, unless
  its docstring (the module's for a file) has a line beginning ``Long because:``.
- No module imports another module's underscore names (a package-private module such as
  ``gan4rec._progress`` may be imported: its names without an underscore are its interface).
- No import circle among gan4rec's modules, lazy imports inside functions included (a package's face
  importing its own submodules is not a circle).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gan4rec"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 120
_LONG_BECAUSE = re.compile(r"^\s*Long because:", re.MULTILINE)

if not PACKAGE.is_dir():  # an installed copy without sources
    pytest.skip("the source tree src/gan4rec is not here", allow_module_level=True)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = _modules()


def _says_long_because(node: ast.AST) -> bool:
    doc = ast.get_docstring(node)  # type: ignore[arg-type]
    return bool(doc and _LONG_BECAUSE.search(doc))


def test_modules_and_functions_fit_in_a_room() -> None:
    too_long = []
    for name, (path, tree) in MODULES.items():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_MODULE_LINES and not _says_long_because(tree):
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not _says_long_because(node):
                    too_long.append(f"{name}:{node.lineno} {node.name}: {n} lines")
    assert not too_long, "past the room size without a 'Long because:' line:\n" + "\n".join(too_long)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    is_package = MODULES[module][0].name == "__init__.py"
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def test_no_module_imports_another_modules_private_names() -> None:
    bad = []
    for name, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, node)
                if not target.startswith("gan4rec"):
                    continue
                # A package-private module (gan4rec._progress) is fine to import; its public names are its face.
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    bad.append(f"{name} imports {target}: {private}")
    assert not bad, "\n".join(bad)


def _imports(name: str, tree: ast.Module) -> set[str]:
    """The gan4rec modules that ``name`` imports anywhere, lazily inside functions included.

    A lazy import still ties the two modules together; it only hides the circle from the interpreter.
    """
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gan4rec"))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, node)
            if target.startswith("gan4rec"):
                for a in node.names:  # `from pkg import module` imports the module
                    sub = f"{target}.{a.name}"
                    found.add(sub if sub in MODULES else target)
    found.discard(name)
    return {m for m in found if m in MODULES}


def test_no_import_circle() -> None:
    graph = {name: _imports(name, tree) for name, (_, tree) in MODULES.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue  # a package's face importing its own submodules
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            dfs(name)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)

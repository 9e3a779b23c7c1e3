"""The layer rule (ARCHITECTURE.md §2), enforced on the source.

engine → channels / auth / backends → services → HTTP / CLI surfaces. A layer imports
only from layers below it, no module takes part in an import cycle, and importing the
engine or the package loads neither the web nor the CLI stack (they load when used).

The imports are read with :mod:`ast`, never executed: a *module-level* import is one
that runs when the module is imported (in ``try``, ``if``, ``with`` or a class body
too), not one inside a function or under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

ENGINE = "parsec.engine"
DOMAIN = (
    "parsec.channels",
    "parsec.auth",
    "parsec.backends",
    "parsec.db",
    "parsec.accounts",
)
SERVICES = ("parsec.services",)
SURFACES = (
    "parsec.facade",
    "parsec.testing",
    "parsec.api",
    "parsec.server",
    "parsec.cli",
)
"""Above the services: the facade that wires them, and the HTTP / CLI surfaces."""
SERVICES_AND_SURFACES = (*SERVICES, *SURFACES)
ENGINE_MAY_IMPORT: frozenset[str] = frozenset()
"""Modules outside the engine the engine may import: none."""

WEB_AND_CLI = ("fastapi", "starlette", "uvicorn", "pydantic", "rich", "typer")
DRIVERS = ("redis", "nats")
DATABASE = ("sqlalchemy", "alembic", "aiosqlite", "asyncpg")
"""Loaded only when a database is opened or migrated (``parsec.db`` is lazy)."""


@dataclass(frozen=True, slots=True)
class Import:
    target: str
    """The parsec module imported (``from parsec.x import y`` names ``parsec.x.y`` when
    that is a module, else ``parsec.x``)."""
    line: int
    module_level: bool


def _module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted((SRC / "parsec").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


MODULES = _module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_in(
    body: list[ast.stmt], module_level: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``body``, and whether it runs at import time."""
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt, module_level
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _imports_in(stmt.body, False)
        elif isinstance(stmt, ast.If):
            yield from _imports_in(stmt.body, module_level and not _is_type_checking(stmt.test))
            yield from _imports_in(stmt.orelse, module_level)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _imports_in(block, module_level)
            for handler in stmt.handlers:
                yield from _imports_in(handler.body, module_level)
        elif isinstance(stmt, ast.With | ast.AsyncWith | ast.ClassDef):
            yield from _imports_in(stmt.body, module_level)
        elif isinstance(stmt, ast.For | ast.AsyncFor | ast.While):
            yield from _imports_in(stmt.body, module_level)
            yield from _imports_in(stmt.orelse, module_level)


def _known(name: str) -> str | None:
    """The parsec module ``name`` is, or is an attribute of."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for stmt, module_level in _imports_in(ast.parse(path.read_text()).body, True):
        if isinstance(stmt, ast.Import):
            targets = [_known(alias.name) for alias in stmt.names]
        else:
            if stmt.level:
                base = package.split(".")[: len(package.split(".")) - stmt.level + 1]
                source = ".".join([*base, *([stmt.module] if stmt.module else [])])
            else:
                source = stmt.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else _known(source)
                for alias in stmt.names
            ]
        found.extend(
            Import(target, stmt.lineno, module_level)
            for target in targets
            if target is not None and target != module
        )
    return tuple(found)


def _within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(sorted(graph[root]))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if step in on_path:
                return [*path[path.index(step) :], step]
            if step in done:
                continue
            path.append(step)
            on_path.add(step)
            stack.append(iter(sorted(graph[step])))
    return None


def _where(source: str, target: str) -> str:
    line = next(i.line for i in imports_of(source) if i.module_level and i.target == target)
    return f"{source} (line {line})"


def test_the_walker_sees_the_package() -> None:
    assert {"parsec", "parsec.engine.node", "parsec.cli"} <= MODULES.keys()
    assert any(i.target == "parsec.engine.hub" for i in imports_of("parsec.engine.node"))


def test_the_cycle_finder_finds_cycles() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_import_cycle() -> None:
    graph = {module: {i.target for i in imports_of(module) if i.module_level} for module in MODULES}
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(
        [*(_where(a, b) for a, b in itertools.pairwise(cycle)), cycle[-1]]
    )


def _package(module: str) -> str:
    """``parsec.engine.node`` -> ``parsec.engine``; top-level modules stand for themselves."""
    return ".".join(module.split(".")[:2])


def test_no_package_import_cycle() -> None:
    """Collapsed to packages (``parsec.engine``, ``parsec.channels``, ``parsec.config``…),
    the module-level imports still form no cycle."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = graph.setdefault(_package(module), set())
        for i in imports_of(module):
            if i.module_level and _package(i.target) != _package(module):
                targets.add(_package(i.target))
                graph.setdefault(_package(i.target), set())
    cycle = _find_cycle(graph)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle)


def _violations(packages: tuple[str, ...], forbidden: object) -> list[str]:
    return [
        f"{module}:{i.line} imports {i.target}"
        for module in MODULES
        if _within(module, *packages)
        for i in imports_of(module)
        if callable(forbidden) and forbidden(i.target)
    ]


def test_the_engine_imports_nothing_above_it() -> None:
    """Not even inside a function or for type checking: the engine is the bottom."""
    assert not _violations(
        (ENGINE,), lambda t: not _within(t, ENGINE) and t not in ENGINE_MAY_IMPORT
    )


def test_the_services_import_no_surface() -> None:
    """A service gets what it needs through its constructor, never the facade."""
    assert not _violations(SERVICES, lambda t: _within(t, *SURFACES))


def test_the_domain_imports_no_service_or_surface() -> None:
    assert not _violations(DOMAIN, lambda t: _within(t, *SERVICES_AND_SURFACES))


def test_the_apis_import_no_server_or_cli() -> None:
    """The HTTP APIs are assembled by the server package, never the other way round."""
    assert not _violations(("parsec.api",), lambda t: _within(t, "parsec.server", "parsec.cli"))


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.partition(".")[0] for name in out.split()}


@pytest.mark.parametrize(
    ("statement", "unwanted"),
    [
        ("import parsec.engine", (*WEB_AND_CLI, *DRIVERS)),
        ("import parsec.engine.node", (*WEB_AND_CLI, *DRIVERS)),
        ("import parsec", (*WEB_AND_CLI, *DATABASE, "aiosmtplib")),
        ("import parsec.config", DATABASE),
        ("import parsec.db", DATABASE),
        ("import parsec.cli", DATABASE),
    ],
)
def test_an_import_stays_light(statement: str, unwanted: tuple[str, ...]) -> None:
    loaded = _loaded_after(statement)
    assert not loaded & set(unwanted), f"{statement!r} loads {sorted(loaded & set(unwanted))}"


def test_the_web_stack_loads_when_used() -> None:
    """The light ``import parsec`` still serves: the app is built on demand."""
    loaded = _loaded_after("import parsec; parsec.Parsec().asgi_app()")
    assert {"starlette", "fastapi"} <= loaded

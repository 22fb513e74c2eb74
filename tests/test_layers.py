"""The package's layers point one way: no import cycles, and no import runs upward.

The imports are read as Python sees them (an AST walk over ``src/``), type-only
imports under ``TYPE_CHECKING`` and imports inside functions included: a cycle
that only a lazy import hides is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "reuse_runtime"

#: Layers from the bottom up. A module may import from its own layer (without a
#: cycle) and from the layers below it, never from a layer above. A module is in
#: the layer of the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    # The floor: plain data, errors, parsing, small utilities; no I/O services.
    (
        "reuse_runtime._version",
        "reuse_runtime.errors",
        "reuse_runtime.user_exceptions",
        "reuse_runtime.address",
        "reuse_runtime.aio",
        "reuse_runtime.paths",
        "reuse_runtime.pickling",
        "reuse_runtime.envvars",
        "reuse_runtime.settings",
        "reuse_runtime.tracebacks",
        "reuse_runtime.model",
        "reuse_runtime.runinfo",
        "reuse_runtime.conditions",
        "reuse_runtime.policy",
        "reuse_runtime.resources",
        "reuse_runtime.security",
        "reuse_runtime.tokens",
        "reuse_runtime.context",
        "reuse_runtime.code",
        "reuse_runtime.bundles",
        "reuse_runtime.logs",
        "reuse_runtime.gctune",
        "reuse_runtime.malloctune",
        "reuse_runtime.runlog",
        "reuse_runtime.metrics",
    ),
    # Protobuf, conversion and the gRPC services: the only importer of generated code.
    ("reuse_runtime.wire",),
    # The gRPC clients: the SDK's controller client, the worker client, the result stream.
    ("reuse_runtime.client",),
    # What runs a task, what builds where it runs, and where runs are recorded.
    ("reuse_runtime.worker", "reuse_runtime.images", "reuse_runtime.engine", "reuse_runtime.store"),
    # Where replicas run: local processes, containers, pods.
    ("reuse_runtime.backends",),
    # The web UI: the runs store and a live controller's state (a protocol), over HTTP.
    ("reuse_runtime.ui",),
    # The controller: pools, routing, scaling, retries, replay, its server.
    ("reuse_runtime.controller",),
    # The user-facing API: TaskEnvironment, run(), Run.
    (
        "reuse_runtime.sdk",
        "reuse_runtime.io",
        "reuse_runtime.storage",
        "reuse_runtime.remote",
        "reuse_runtime.models",
        "reuse_runtime.report",
        "reuse_runtime.durable",
    ),
    # Entry points: the package itself, the CLI, the test harness, the manifests.
    (
        "reuse_runtime.manifests",
        "reuse_runtime.testing",
        "reuse_runtime.cli",
        "reuse_runtime.__main__",
        "reuse_runtime",
    ),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if "v1" in parts and "wire" in parts:
            continue  # generated code
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import sub` imports the submodule when there is one.
            names = [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target and target != module:
                    yield target


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: set(_imports(m, p, modules)) for m, p in modules.items()}


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # The package root is a layer of its own, not a prefix of every module.
            within = module.startswith(prefix + ".") and prefix != PACKAGE
            if (module == prefix or within) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (source, target)
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    }


def test_every_module_has_a_layer() -> None:
    assert [m for m in import_graph() if layer_of(m) < 0] == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], f"import cycles (each line one): {found}"


def test_no_import_runs_up_the_layers() -> None:
    found = violations(import_graph())
    assert sorted(found) == [], "imports that run up the layers (importer, imported)"


def _generated_imports(path: Path) -> Iterator[str]:
    """The generated protobuf modules ``path`` imports (``*_pb2``, ``*_pb2_grpc``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [f"{node.module or ''}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (name for name in names if "_pb2" in name or ".wire.v1" in name)


def test_only_the_wire_imports_generated_code() -> None:
    found = {
        module: sorted(_generated_imports(path))
        for module, path in _modules().items()
        if layer_of(module) != layer_of("reuse_runtime.wire")
    }
    assert {module: names for module, names in found.items() if names} == {}


def test_the_check_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("reuse_runtime.metrics", "reuse_runtime.controller.service"),
        ("reuse_runtime.wire.convert", "reuse_runtime.client"),
    ],
)
def test_the_check_sees_an_upward_import(source: str, target: str) -> None:
    assert violations({source: {target}}) == {(source, target)}


def test_no_module_is_over_700_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in (SRC / PACKAGE).rglob("*.py")
        if "wire/v1" not in path.as_posix() and (n := len(path.read_text().splitlines())) > 700
    }
    assert long == {}, "split these where their jobs part"

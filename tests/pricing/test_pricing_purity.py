"""core/pricing must stay pure: stdlib only, no I/O, no clock, no floats for money."""

import ast
import pathlib

import core.pricing

PKG = pathlib.Path(core.pricing.__file__).parent
ALLOWED = {"__future__", "calendar", "collections", "dataclasses", "datetime", "decimal", "functools", "typing", "json",
           "weakref"}
# the models package imports its own modules (one module per charge model): nothing else may load code
DISCOVERY = {"importlib", "pkgutil"}
FORBIDDEN_CALLS = {"open", "float", "print", "input"}


def test_only_stdlib_imports_and_no_io_or_float():
    for path in sorted(PKG.rglob("*.py")):
        allowed = ALLOWED | DISCOVERY if path == PKG / "models" / "__init__.py" else ALLOWED
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name.split(".")[0] in allowed, f"{path.name}: import {a.name}"
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in allowed, f"{path.name}: from {node.module}"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in FORBIDDEN_CALLS, f"{path.name}: {node.func.id}()"
            elif isinstance(node, ast.Attribute):
                assert node.attr not in {"today", "now", "utcnow"}, f"{path.name}: .{node.attr}"
            elif isinstance(node, ast.Constant):
                assert not isinstance(node.value, float), f"{path.name}: float literal {node.value}"

"""Size limits of issue 14: no module in core/ over about 500 lines, no function over about 60 (migrations are
generated and not checked). Lists every offender in core/, db/, pages/, seeds/ and bench/:

    .venv/bin/python -m tests.test_sizes

The test fails on offenders in core/ and db/ outside EXEMPT.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
CHECKED = ("core", "db")
LISTED = ("core", "db", "pages", "seeds", "bench", "Home.py")
# Nothing exempt: every module of core/ and db/ keeps the limits (add a path here only with its reason).
EXEMPT: tuple[str, ...] = ()


def _files(roots: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for r in roots:
        p = ROOT / r
        out += [p] if p.is_file() else sorted(p.rglob("*.py"))
    return [f for f in out if "migrations" not in f.parts]


def offenders(roots: tuple[str, ...] = LISTED) -> list[str]:
    """'path: N lines' for long modules and 'path:line name(): N lines' for long functions."""
    out = []
    for f in _files(roots):
        rel = f.relative_to(ROOT).as_posix()
        text = f.read_text()
        n = len(text.splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{rel}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    out.append(f"{rel}:{node.lineno} {node.name}(): {length} lines")
    return out


def test_core_and_db_modules_and_functions_are_short():
    found = [o for o in offenders(CHECKED) if not o.startswith(EXEMPT)]
    assert not found, "\n".join(found)


if __name__ == "__main__":
    found = offenders()
    print("\n".join(found) or "none")
    sys.exit(1 if found else 0)

"""Where each value of a TOML file is written: ``{"partners[0].plans[1].charges[0].tiers[1].unit_price": 17}``.

tomllib gives values but no positions, so the scenario checker maps the dotted path of a problem to a line
with this small scanner. It reads a file that tomllib has already accepted (so it can be lenient), follows
table headers (``[a.b]``), arrays of tables (``[[a.b]]``, counting their elements), dotted keys, inline
tables and arrays (each element gets its own ``[i]``), strings of all four kinds and comments, and records
the line where every key or array element starts. :func:`line_for` walks back to the nearest written
ancestor when a path is not itself in the file (a default, or a problem about a whole table).
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = ",]}\n#"


class _Scanner:
    def __init__(self, source: str):
        self.s = source
        self.i = 0
        self.line = 1
        self.lines: dict[str, int] = {}
        self.aot: dict[str, int] = {}  # array-of-tables path -> last index

    # -- low level
    def peek(self, n: int = 0) -> str:
        j = self.i + n
        return self.s[j] if j < len(self.s) else ""

    def advance(self, n: int = 1) -> None:
        chunk = self.s[self.i:self.i + n]
        self.line += chunk.count("\n")
        self.i += n

    def skip_space(self, newlines: bool) -> None:
        while self.i < len(self.s):
            c = self.peek()
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                while self.i < len(self.s) and self.peek() != "\n":
                    self.advance()
            else:
                return

    def skip_line(self) -> None:
        while self.i < len(self.s) and self.peek() != "\n":
            self.advance()

    # -- keys and values
    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip_space(False)
            c = self.peek()
            if c in "\"'":
                parts.append(self.string())
            else:
                m = _BARE.match(self.s, self.i)
                if not m:
                    return parts
                parts.append(m.group(0))
                self.advance(len(m.group(0)))
            self.skip_space(False)
            if self.peek() != ".":
                return parts
            self.advance()

    def string(self) -> str:
        q = self.peek()
        if self.s.startswith(q * 3, self.i):
            end = self.s.find(q * 3, self.i + 3)
            end = len(self.s) if end < 0 else end
            while self.s.startswith(q, end + 3):  # up to two quotes may end the content
                end += 1
            text = self.s[self.i + 3:end]
            self.advance(end + 3 - self.i)
            return text
        j = self.i + 1
        while j < len(self.s) and self.s[j] != q:
            j += 2 if (q == '"' and self.s[j] == "\\") else 1
        text = self.s[self.i + 1:j]
        self.advance(j + 1 - self.i)
        return text

    def value(self, path: str) -> None:
        self.lines.setdefault(path, self.line)
        c = self.peek()
        if c in "\"'":
            self.string()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:
            while self.i < len(self.s) and self.peek() not in _SCALAR_END:
                self.advance()

    def array(self, path: str) -> None:
        self.advance()
        n = 0
        while True:
            self.skip_space(True)
            if self.peek() in ("]", ""):
                self.advance()
                return
            if self.peek() == ",":
                self.advance()
                continue
            self.value(f"{path}[{n}]")
            n += 1

    def inline_table(self, path: str) -> None:
        self.advance()
        while True:
            self.skip_space(True)
            c = self.peek()
            if c in ("}", ""):
                self.advance()
                return
            if c == ",":
                self.advance()
                continue
            self.key_value(path)

    def key_value(self, table: str) -> None:
        line = self.line
        parts = self.key()
        path = _join(table, ".".join(parts))
        self.lines.setdefault(path, line)
        self.skip_space(False)
        if self.peek() == "=":
            self.advance()
            self.skip_space(False)
            self.value(path)

    # -- tables
    def resolve(self, parts: list[str]) -> str:
        """A header's dotted name with the current index of every array of tables on the way."""
        path = ""
        for p in parts:
            path = _join(path, p)
            if path in self.aot:
                path = f"{path}[{self.aot[path]}]"
        return path

    def header(self) -> str:
        line = self.line
        double = self.s.startswith("[[", self.i)
        self.advance(2 if double else 1)
        parts = self.key()
        if double:
            parent = self.resolve(parts[:-1])
            name = _join(parent, parts[-1])
            self.aot[name] = self.aot.get(name, -1) + 1
            path = f"{name}[{self.aot[name]}]"
        else:
            path = self.resolve(parts)
        self.lines.setdefault(path, line)
        self.skip_line()
        return path

    def run(self) -> dict[str, int]:
        table = ""
        while True:
            self.skip_space(True)
            if self.i >= len(self.s):
                return self.lines
            if self.peek() == "[":
                table = self.header()
            else:
                start = self.i
                self.key_value(table)
                if self.i == start:  # not a key: skip the line rather than loop
                    self.skip_line()


def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a else b


def value_lines(source: str) -> dict[str, int]:
    """path -> line (1-based) of every key, table header and array element written in `source`."""
    return _Scanner(source).run()


_LAST = re.compile(r"(\[\d+\]|\.[^.\[]+)$")


def line_for(lines: dict[str, int], path: str) -> int | None:
    """The line of `path`, else of its nearest ancestor written in the file (None if none is)."""
    while path:
        if path in lines:
            return lines[path]
        shorter = _LAST.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None

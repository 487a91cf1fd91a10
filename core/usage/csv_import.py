"""Reading usage events from CSV (the upload page and the command-line import share this).

Format (docs/usage-import.md): a header row, then one event per row. Columns: account_id, metric,
quantity, occurred_at, event_id (required), source, properties (optional JSON object) and any number of
``prop.<name>`` columns, each adding one property. Row numbers in errors are file line numbers.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator

from core.errors import ValidationError

REQUIRED = ("account_id", "metric", "quantity", "occurred_at", "event_id")
OPTIONAL = ("source", "properties")
PROP_PREFIX = "prop."
# An upload is parsed in memory (the page keeps the parsed events for its reruns): about 20 times the file
# size. 20 MB keeps one import under about 400 MB; larger files go through `python -m core.usage import`
# in several files (docs/usage-import.md). Streamlit's own limit is set to the same (.streamlit/config.toml).
MAX_BYTES = 20 * 1024 * 1024
MAX_FIELD_BYTES = 128 * 1024  # Python's csv module refuses a longer field (csv.field_size_limit)
FIRST_DATA_LINE = 2


def parse_csv(data: bytes | str, *, max_bytes: int | None = MAX_BYTES) -> list[dict]:
    """Events (dicts for core.usage.ingest.record_events) from CSV text; ValidationError for a bad file
    (larger than `max_bytes` - the upload's cap; the command line passes None -, unreadable, a field
    over MAX_FIELD_BYTES)."""
    if isinstance(data, bytes):
        if max_bytes is not None and len(data) > max_bytes:
            raise ValidationError({"file": f"The file is larger than {max_bytes // (1024 * 1024)} MB: split it, "
                                           "or import it with `python -m core.usage import`."})
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        return list(_events(reader))
    except csv.Error as exc:
        raise _unreadable(reader, exc) from exc


def _unreadable(reader, exc: csv.Error) -> ValidationError:
    return ValidationError({"file": f"Line {reader.line_num}: the CSV cannot be read ({exc}). A field may be at "
                                    f"most {MAX_FIELD_BYTES // 1024} KiB."})


# The command line streams a file (core.usage.cli): parsed once, row by row, handed on in batches of
# CLI_BATCH events, so memory stays bounded (about one batch) whatever the file's size. Its cap, CLI_MAX_BYTES,
# guards against a wrong file (e.g. a database dump) rather than memory; --max-mb changes it.
CLI_BATCH = 50_000
CLI_MAX_BYTES = 2 * 1024 ** 3


def stream_csv_file(path, *, batch: int = CLI_BATCH, max_bytes: int | None = CLI_MAX_BYTES) -> Iterator[list[dict]]:
    """The events of a CSV file in lists of at most `batch`, read and parsed once, row by row (a bad header, a
    file over `max_bytes`, non-UTF-8 text or an unreadable line: ValidationError)."""
    size = os.path.getsize(path)
    if max_bytes is not None and size > max_bytes:
        raise ValidationError({"file": f"The file is {size // 2**20} MB, over the limit of {max_bytes // 2**20} MB "
                                       "(--max-mb): split it."})
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        chunk: list[dict] = []
        try:
            for ev in _events(reader):
                chunk.append(ev)
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
        except csv.Error as exc:
            raise _unreadable(reader, exc) from exc
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
        if chunk:
            yield chunk


def _events(reader) -> Iterator[dict]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        raise ValidationError({"file": "The file is empty."}) from exc
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL and not h.startswith(PROP_PREFIX)]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)} (properties go in prop.<name> columns)")
    if len(set(header)) != len(header):
        problems.append("a column appears twice")
    if problems:
        raise ValidationError({"file": "; ".join(problems).capitalize() + "."})
    base = [(i, h) for i, h in enumerate(header) if not h.startswith(PROP_PREFIX)]
    props = [(i, h[len(PROP_PREFIX):]) for i, h in enumerate(header) if h.startswith(PROP_PREFIX)]
    return _rows(reader, header, base, props)


def _rows(reader, header: list[str], base: list, props: list) -> Iterator[dict]:
    for cells in reader:
        if not any(c.strip() for c in cells):
            yield {"_blank": True}  # keeps row numbers aligned; reported as an error
            continue
        cells = cells + [""] * (len(header) - len(cells))
        ev: dict = {h: cells[i] for i, h in base}
        extra = {name: cells[i] for i, name in props if cells[i] != ""}
        if extra:
            try:
                merged = json.loads(ev["properties"]) if ev.get("properties", "").strip() else {}
            except (ValueError, RecursionError):  # reported by the row's validation
                merged = None
            if isinstance(merged, dict):
                merged.update(extra)
                ev["properties"] = merged
        if len(cells) > len(header):
            ev["_extra_cells"] = cells[len(header):]
        yield ev

"""Reading usage events from CSV (the upload page and the command-line import share this).

Format (docs/usage-import.md): a header row, then one event per row. Columns: account_id, metric,
quantity, occurred_at, event_id (required), source, properties (optional JSON object) and any number of
``prop.<name>`` columns, each adding one property. Row numbers in errors are file line numbers.
"""

from __future__ import annotations

import csv
import io
import json

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
        return _events(reader)
    except csv.Error as exc:
        raise ValidationError({"file": f"Line {reader.line_num}: the CSV cannot be read ({exc}). A field may be at "
                                       f"most {MAX_FIELD_BYTES // 1024} KiB."}) from exc


def _events(reader) -> list[dict]:
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
    events = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            events.append({"_blank": True})  # keeps row numbers aligned; reported as an error
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
        events.append(ev)
    return events

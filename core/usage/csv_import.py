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
MAX_BYTES = 200 * 1024 * 1024
FIRST_DATA_LINE = 2


def parse_csv(data: bytes | str) -> list[dict]:
    """Events (dicts for core.usage.ingest.record_events) from CSV text; ValidationError for a bad file."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise ValidationError({"file": "The file is larger than 200 MB: split it."})
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": "The file is not UTF-8 text."}) from exc
    reader = csv.reader(io.StringIO(data, newline=""))
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
            except ValueError:
                merged = None
            if isinstance(merged, dict):
                merged.update(extra)
                ev["properties"] = merged
        if len(cells) > len(header):
            ev["_extra_cells"] = cells[len(header):]
        events.append(ev)
    return events

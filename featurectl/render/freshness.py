"""Freshness reports: JSON (SPEC §9 keys), markdown, Prometheus textfile lines, a table."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from featurectl.core.durations import format_duration
from featurectl.core.monitoring import FRESHNESS_STATUSES
from featurectl.render.tables import TableView

_KEYS = ("view", "major", "freshness_sla_seconds", "age_seconds", "ratio", "status", "newest_event_timestamp",
         "watermark")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def freshness_rows(result) -> list[dict[str, Any]]:
    rows = []
    for v in result.views:
        row = {k: getattr(v, k) for k in _KEYS}
        row["newest_event_timestamp"], row["watermark"] = _iso(v.newest_event_timestamp), _iso(v.watermark)
        if result.checked_source:
            row["source_newest_event_timestamp"] = _iso(v.source_newest_event_timestamp)
        rows.append(row)
    return rows


_AGE_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def _age(seconds: float | None) -> str:
    """An age for people: its largest unit and the next when it is not zero ("30d 14h",
    "2h 5m", "45s"), not one exact duration (a month-old value read "44091m")."""
    if seconds is None:
        return "–"
    rest, parts = int(abs(seconds)), list[str]()
    for unit, size in _AGE_UNITS:
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
        elif parts:
            break
        if len(parts) == 2:
            break
    text = " ".join(parts)
    return f"-{text}" if seconds < 0 else text


def _cells(v, checked_source: bool) -> list[str]:
    cells = [v.view, str(v.major), format_duration(v.freshness_sla_seconds), _age(v.age_seconds),
             "–" if v.ratio is None else f"{v.ratio:.2f}", _iso(v.newest_event_timestamp) or "never",
             _iso(v.watermark) or "never", _age(v.pipeline_lag_seconds)]
    if checked_source:
        cells.append(_iso(v.source_newest_event_timestamp) or "no rows")
    return [*cells, v.behind]


def _headers(checked_source: bool) -> list[str]:
    headers = ["view", "major", "SLA", "age", "age/SLA", "newest event", "watermark", "pipeline lag"]
    return [*headers, *(["source newest"] if checked_source else []), "behind"]


def _verdict(result) -> str:
    failing = result.failing
    counts = ", ".join(f"{sum(1 for v in result.views if v.status == s)} {s}" for s in FRESHNESS_STATUSES)
    gate = (f"{len(failing)} view(s) at or above --fail-on {result.fail_on}" if failing
            else f"nothing at or above --fail-on {result.fail_on}")
    return f"{len(result.views)} view(s) with a freshness_sla at {_iso(result.now)}: {counts}; {gate}."


def freshness_table(result) -> tuple[str, TableView, list[str]]:
    """The title, the table (plain cells: view names are never cut) and the line under it."""
    rows = [(v.status, *_cells(v, result.checked_source)) for v in result.views]
    return "Freshness", TableView(("status", *_headers(result.checked_source)), rows), [_verdict(result)]


def freshness_markdown(result) -> str:
    headers = ["status", *_headers(result.checked_source)]
    lines = ["### Freshness", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for v in result.views:
        lines.append(f"| **{v.status}** | " + " | ".join(_cells(v, result.checked_source)) + " |")
    return "\n".join([*lines, "", _verdict(result)]) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def freshness_families(result) -> list[tuple[str, str, list[tuple[dict[str, str], float]]]]:
    """The Prometheus families of a freshness result: (name, help, [(labels, value)]). Timestamps
    in seconds, not ages, so Prometheus computes the age (time() - ...) itself. One source for
    `freshness --format prometheus` (textfile collector) and the server's /metrics."""
    moments = [
        ("featurectl_newest_event_timestamp_seconds", "Newest event timestamp written to the online store.",
         lambda v: v.newest_event_timestamp),
        ("featurectl_watermark_timestamp_seconds", "Materialization watermark of the online store.",
         lambda v: v.watermark),
    ]
    if result.checked_source:
        moments.append(("featurectl_source_newest_event_timestamp_seconds",
                        "Newest event timestamp in the offline source.", lambda v: v.source_newest_event_timestamp))
    families = [(name, help_text, [({"view": v.view, "major": str(v.major)}, value(v).timestamp())
                                   for v in result.views if value(v) is not None])
                for name, help_text, value in moments]
    families.append(("featurectl_freshness_sla_seconds", "The view's declared freshness_sla.",
                     [({"view": v.view, "major": str(v.major)}, v.freshness_sla_seconds) for v in result.views]))
    return families


def freshness_prometheus(result) -> str:
    """Textfile-collector lines (node_exporter's textfile collector reads them)."""
    lines = []
    for name, help_text, samples in freshness_families(result):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [name + "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "} " + _number(value)
                  for labels, value in samples]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6f}"  # SLAs whole seconds, timestamps to the µs

"""The check report: its data, a rich rendering for people and a JSON one for machines."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ._judge import Finding, Level

__all__ = [
    "CheckReport",
    "CheckRow",
    "LatencyStats",
    "RichProgress",
    "latency_stats",
    "render_json",
    "render_text",
]

_STYLE: dict[str, str] = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
_FINDINGS_SHOWN = 40
_WORST_FIRST: tuple[Level, ...] = ("fail", "warn", "pass", "skip")
_STEP_HEADERS = {
    "auth validation": "auth",
    "contact sync (full)": "full sync",
    "contact sync (incremental)": "incremental",
    "interaction retrieval": "interactions",
    "agent sync": "agents",
}


@dataclass(slots=True)
class CheckRow:
    step: str
    check: str
    counts: dict[Level, int] = field(
        default_factory=lambda: {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
    )

    @property
    def outcome(self) -> Level:
        return next((level for level in _WORST_FIRST if self.counts[level]), "skip")


@dataclass(frozen=True, slots=True)
class LatencyStats:
    calls: int
    p50: float
    p95: float
    p99: float
    max: float


def _rank(ordered: Sequence[float], percent: float) -> float:
    # Nearest rank: a real observed value, and p99 of few calls is simply the slowest.
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def latency_stats(samples: Mapping[str, Sequence[float]]) -> dict[str, LatencyStats]:
    stats: dict[str, LatencyStats] = {}
    for endpoint, values in samples.items():
        if not values:
            continue
        ordered = sorted(values)
        stats[endpoint] = LatencyStats(
            len(ordered),
            _rank(ordered, 50),
            _rank(ordered, 95),
            _rank(ordered, 99),
            ordered[-1],
        )
    return stats


@dataclass(slots=True)
class CheckReport:
    """Everything a run found. `findings` holds problems and skips; passes are counts."""

    target: str
    configuration: str
    rows: list[CheckRow]
    findings: list[tuple[str, Finding]]  # (step, finding)
    latency: dict[str, LatencyStats]
    stats: dict[str, int]

    @property
    def counts(self) -> dict[Level, int]:
        totals: dict[Level, int] = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
        for row in self.rows:
            for level, n in row.counts.items():
                totals[level] += n
        return totals

    @property
    def failed(self) -> bool:
        return any(row.counts["fail"] for row in self.rows)

    def failures(self) -> Iterator[tuple[str, Finding]]:
        return ((s, f) for s, f in self.findings if f.level == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "configuration": self.configuration,
            "outcome": "fail" if self.failed else "pass",
            "counts": self.counts,
            "checks": [
                {"step": r.step, "check": r.check, "outcome": r.outcome, **r.counts}
                for r in self.rows
            ],
            "findings": [
                {
                    "level": f.level,
                    "step": step,
                    "check": f.check,
                    "call": f.call,
                    "field": f.field,
                    "message": f.message,
                }
                for step, f in self.findings
            ],
            "latency_ms": {
                endpoint: {
                    "calls": s.calls,
                    "p50": round(s.p50 * 1000, 2),
                    "p95": round(s.p95 * 1000, 2),
                    "p99": round(s.p99 * 1000, 2),
                    "max": round(s.max * 1000, 2),
                }
                for endpoint, s in self.latency.items()
            },
            "stats": self.stats,
        }


def render_json(report: CheckReport) -> str:
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _cell(row: CheckRow | None) -> Text:
    if row is None:
        return Text("·", style="dim")
    marks: tuple[tuple[Level, str], ...] = (("pass", "✓"), ("warn", "!"), ("fail", "✗"))
    parts = [
        (f"{mark}{row.counts[level]}", _STYLE[level]) for level, mark in marks if row.counts[level]
    ]
    if row.counts["skip"]:
        parts.append(("skip", _STYLE["skip"]))
    return Text(" ").join(Text(text, style=style) for text, style in parts)


def _matrix(report: CheckReport) -> Table:
    """Checks down, steps across: each cell counts passes (✓), warnings (!) and failures (✗)."""
    steps = list(dict.fromkeys(row.step for row in report.rows))
    checks = list(dict.fromkeys(row.check for row in report.rows))
    cells = {(row.step, row.check): row for row in report.rows}
    table = Table(
        title="Checks",
        title_justify="left",
        caption="✓ passed  ! warning  ✗ failed  · not judged in that step",
        caption_justify="left",
    )
    table.add_column("Check")
    for step in steps:
        table.add_column(_STEP_HEADERS.get(step, step), justify="right")
    table.add_column("Total", justify="right")
    table.add_column("Result")
    for check in checks:
        rows = [cells.get((step, check)) for step in steps]
        merged = CheckRow("", check)
        for row in rows:
            for level, n in row.counts.items() if row else ():
                merged.counts[level] += n
        table.add_row(
            Text(check),
            *(_cell(row) for row in rows),
            _cell(merged),
            Text(merged.outcome.upper(), style=_STYLE[merged.outcome]),
        )
    return table


def _stats_line(stats: dict[str, int]) -> str:
    parts = []
    for run in ("full", "incremental"):
        if f"contacts_{run}" in stats:
            pages = stats.get(f"contact_pages_{run}", 0)
            parts.append(
                f"{run} sync: {stats[f'contacts_{run}']} contacts in {pages} "
                f"page{'s' if pages != 1 else ''}"
            )
    labels = {
        "interactions": "interactions",
        "agents": "agents",
        "actions": "actions run",
        "stored_contacts": "contacts in the store",
        "findings_not_listed": "findings not listed",
    }
    parts += [f"{label}: {stats[key]}" for key, label in labels.items() if key in stats]
    return "; ".join(parts)


def render_text(report: CheckReport, console: Console) -> None:
    # Every string that came from the bridge goes through Text(), never markup: a bridge's
    # error message must not be able to restyle (or hide lines of) the report.
    console.print(Text.assemble(("Talkdesk contract check ", "bold"), (report.target, "cyan")))
    console.print(Text(f"configuration: {report.configuration}", style="dim"))

    console.print(_matrix(report))

    shown = sorted(
        (item for item in report.findings if item[1].level != "pass"),
        key=lambda item: ("fail", "warn", "skip").index(item[1].level),
    )
    if shown:
        console.print(Text("Findings", style="bold"))
    for _step, finding in shown[:_FINDINGS_SHOWN]:
        where = f" · {finding.field}" if finding.field else ""
        console.print(
            Text.assemble(
                (f"{finding.level.upper():<4} ", _STYLE[finding.level]),
                (finding.call, "bold"),
                (where, "cyan"),
                f": {finding.message}",
            ),
            soft_wrap=True,
        )
    if len(shown) > _FINDINGS_SHOWN:
        console.print(
            Text(f"… and {len(shown) - _FINDINGS_SHOWN} more (--json lists them all)", "dim")
        )

    if report.latency:
        latency = Table(title="Latency (ms)", title_justify="left")
        latency.add_column("Endpoint")
        for name in ("calls", "p50", "p95", "p99", "max"):
            latency.add_column(name, justify="right")
        for endpoint, s in report.latency.items():
            latency.add_row(
                Text(endpoint), str(s.calls), _ms(s.p50), _ms(s.p95), _ms(s.p99), _ms(s.max)
            )
        console.print(latency)

    if report.stats:
        console.print(Text(_stats_line(report.stats), "dim"))
    counts = report.counts
    summary = (
        f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, "
        f"{counts['skip']} skipped"
    )
    if report.failed:
        console.print(Text.assemble(("FAIL ", "bold red"), summary))
    else:
        console.print(Text.assemble(("PASS ", "bold green"), summary))


class RichProgress:
    """A progress display on stderr for long runs (pages and items so far, elapsed time)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[pages]} pages, {task.completed:.0f} {task.fields[unit]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start(self, label: str, unit: str) -> None:
        self._tasks[label] = self._progress.add_task(label, total=None, pages=0, unit=unit)

    def update(self, label: str, pages: int, items: int) -> None:
        task = self._tasks.get(label)
        if task is not None:
            self._progress.update(task, completed=items, pages=pages)

    def finish(self, label: str) -> None:
        task = self._tasks.pop(label, None)
        if task is not None:
            self._progress.remove_task(task)

"""Full checks started from the console: `talkdesk-bridge check` run in the background, in
process, polled by the page for progress.

A job belongs to the session that started it. Its credentials live only in the running task
(the checker masks them in its report); a finished job keeps the report alone. Jobs are kept
in memory by the worker that runs them, a bounded number at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Job", "Jobs", "Progress", "TooBusy"]

log = logging.getLogger("talkdesk_bridge.console")

MAX_JOBS = 20  # kept, finished ones included
MAX_RUNNING = 2  # a check is many calls: a few at once per process


class TooBusy(Exception):
    """Too many checks are running."""


@dataclass(slots=True)
class Progress:
    """The checker's progress hook: what step runs, and how far it got."""

    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    current: str | None = None

    def start(self, label: str, unit: str) -> None:
        self.current = label
        self.steps[label] = {"label": label, "unit": unit, "pages": 0, "items": 0, "done": False}

    def update(self, label: str, pages: int, items: int) -> None:
        step = self.steps.setdefault(
            label, {"label": label, "unit": "items", "pages": 0, "items": 0, "done": False}
        )
        step["pages"], step["items"] = pages, items

    def finish(self, label: str) -> None:
        if label in self.steps:
            self.steps[label]["done"] = True
        if self.current == label:
            self.current = None


@dataclass(slots=True)
class Job:
    id: str
    session: str
    connector: str
    started: float = field(default_factory=time.monotonic)
    state: Literal["running", "done", "failed"] = "running"
    progress: Progress = field(default_factory=Progress)
    report: dict[str, Any] | None = None
    error: str | None = None
    finished: float | None = None

    def elapsed(self) -> float:
        return round((self.finished or time.monotonic()) - self.started, 1)


Runner = Callable[[Progress], Awaitable[dict[str, Any]]]


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, session: str, connector: str, run: Runner) -> Job:
        if len(self._tasks) >= MAX_RUNNING:
            raise TooBusy
        self._forget_old()
        job = Job(secrets.token_urlsafe(12), session, connector)
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job, run), name="console-check")
        return job

    def get(self, job_id: str, session: str) -> Job | None:
        job = self._jobs.get(job_id)
        # Another session's job does not exist, as far as this one can tell.
        return job if job is not None and job.session == session else None

    async def _run(self, job: Job, run: Runner) -> None:
        try:
            job.report = await run(job.progress)
            job.state = "done"
        except asyncio.CancelledError:
            job.state, job.error = "failed", "stopped: the bridge is shutting down"
            raise
        except Exception as exc:
            # The type only: a message could quote a value the user typed.
            log.warning("console check failed: %s", type(exc).__name__)
            job.state, job.error = "failed", f"the check could not run ({type(exc).__name__})"
        finally:
            job.finished = time.monotonic()
            self._tasks.pop(job.id, None)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state != "running"]
        finished.sort(key=lambda j: j.started)
        while len(self._jobs) >= MAX_JOBS and finished:
            del self._jobs[finished.pop(0).id]

    async def close(self) -> None:
        tasks: Mapping[str, asyncio.Task[None]] = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

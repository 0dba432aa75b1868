"""Playing Talkdesk against a bridge: the calls, in Talkdesk's order, with its paging rules.

One `httpx.AsyncClient` makes every call; each answer goes to the pure judges in `_judge`, and
the findings are collected (with credentials masked) into a `CheckReport`. A transport error or
a 5xx ends its step with a failure, never a traceback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from ._judge import (
    BODY,
    HTTPS,
    NOT_OFFERED,
    PAGING,
    RUN,
    TRANSPORT,
    AgentPageInfo,
    ContactPageInfo,
    DuplicateTracker,
    Finding,
    Level,
    Reply,
    Verdict,
    canonical,
    judge_action_result,
    judge_agent_page,
    judge_auth_body,
    judge_contact_page,
    judge_interactions,
    judge_reply,
)
from ._plan import (
    Configuration,
    Plan,
    PlanError,
    Target,
    build_plan,
    display_url,
    join_url,
    parse_configuration,
)
from ._report import CheckReport, CheckRow, latency_stats
from ._store import ContactStore

__all__ = ["CheckOptions", "ProgressHook", "run_check", "sample_input"]

STEP_SETUP = "setup"
STEP_AUTH = "auth validation"
STEP_FULL = "contact sync (full)"
STEP_INCREMENTAL = "contact sync (incremental)"
STEP_INTERACTIONS = "interaction retrieval"
STEP_AGENTS = "agent sync"
STEP_ACTIONS = "actions"

# A few findings per check say what is wrong; millions (every phone of a big CRM) would not.
_KEEP_PER_CHECK = 200
_USER_AGENT = "talkdesk-bridge-check/0.1 (Talkdesk simulator)"


class ProgressHook(Protocol):
    def start(self, label: str, unit: str) -> None: ...

    def update(self, label: str, pages: int, items: int) -> None: ...

    def finish(self, label: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CheckOptions:
    url: str | None = None
    auth: Mapping[str, str] = field(default_factory=dict)
    bad_auth: Mapping[str, str] | None = None  # replaces these keys of the good credentials
    actions: bool = False
    contacts_sample: int = 5
    configuration: Configuration | None = None  # from a file: its URLs are the ones to call
    store: Path | None = None
    max_pages: int = 10_000
    timeout: float = 30.0
    paths: Mapping[str, str] = field(default_factory=dict)  # feature -> path override
    action_path: str | None = None  # e.g. "actions/{name}"
    max_body_bytes: int = 64 * 1024 * 1024


class _Masker:
    """Replaces credential values in anything the report shows."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, values: Iterable[object]) -> None:
        for value in values:
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            # As given, and as it reads inside a JSON string (a bridge quoting it back).
            for form in (text, orjson.dumps(text).decode()[1:-1]):
                if len(form) >= 4:  # shorter values are not secrets; masking them garbles text
                    self._values.add(form)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


class _Recorder:
    def __init__(self, mask: _Masker) -> None:
        self._mask = mask
        self.rows: dict[tuple[str, str], CheckRow] = {}
        self.findings: list[tuple[str, Finding]] = []
        self.kept: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.omitted = 0

    def _row(self, step: str, check: str) -> CheckRow:
        row = self.rows.get((step, check))
        if row is None:
            row = self.rows[(step, check)] = CheckRow(step, check)
        return row

    def add(self, step: str, verdict: Verdict) -> None:
        for check, count in verdict.passed.items():
            self._row(step, check).counts["pass"] += count
        for f in verdict.findings:
            self._row(step, f.check).counts[f.level] += 1
            key = (step, f.check)
            if self.kept[key] >= _KEEP_PER_CHECK:
                self.omitted += 1
                continue
            self.kept[key] += 1
            masked = Finding(
                f.level,
                f.check,
                self._mask(f.call),
                self._mask(f.field) if f.field else None,
                self._mask(f.message),
            )
            self.findings.append((step, masked))

    def note(
        self, step: str, level: Level, check: str, call: str, message: str, where: str | None = None
    ) -> None:
        verdict = Verdict(call)
        verdict.add(level, check, where, message)
        self.add(step, verdict)


class _Sampler:
    """A uniform sample of synced contacts, preferring those with emails or phones."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size = size
        self._rng = rng
        self._pools: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        self._seen: dict[bool, int] = {True: 0, False: 0}

    def offer(self, contact: Mapping[str, Any]) -> None:
        if self.size <= 0:
            return
        reachable = bool(contact.get("emails") or contact.get("phones"))
        pool = self._pools[reachable]
        self._seen[reachable] += 1
        kept = {k: contact[k] for k in ("id", "name", "emails", "phones") if k in contact}
        if len(pool) < self.size:
            pool.append(kept)
        else:
            slot = self._rng.randrange(self._seen[reachable])
            if slot < self.size:
                pool[slot] = kept

    def pick(self) -> list[dict[str, Any]]:
        return (self._pools[True] + self._pools[False])[: self.size]


_CALLER_DETAILS = ("name", "email", "phone")


def sample_input(key: str, label: str, serial: int = 0) -> str:
    """A plausible value for an action input, judged by its key (or displayed name)."""
    k = f"{key} {label}".lower()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    tag = secrets.token_hex(3)
    if "email" in k:
        return f"talkdesk.check+{tag}@example.com"
    if "phone" in k:
        # 555-0100..0199: reserved for fiction, never a real subscriber.
        return f"+1617555{100 + serial % 100:04d}"
    if "subject" in k or "title" in k:
        return f"talkdesk-bridge check {stamp}"
    if "name" in k:
        return f"Casey Check {tag}"
    if "priority" in k:
        return "normal"
    if "status" in k:
        return "open"
    if "url" in k or "website" in k:
        return f"https://example.com/talkdesk-check/{tag}"
    if "date" in k:
        return datetime.now(UTC).strftime("%Y-%m-%d")
    return f"Created by talkdesk-bridge check at {stamp}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".test"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Run:
    def __init__(
        self,
        options: CheckOptions,
        plan: Plan,
        client: httpx.AsyncClient,
        recorder: _Recorder,
        mask: _Masker,
        progress: ProgressHook | None,
        store: ContactStore | None,
    ) -> None:
        self.options = options
        self.plan = plan
        self.client = client
        self.rec = recorder
        self.mask = mask
        self.progress = progress
        self.store = store
        self.auth: dict[str, Any] = dict(options.auth)
        self.latency: defaultdict[str, list[float]] = defaultdict(list)
        self.sampler = _Sampler(options.contacts_sample, random.Random())
        self.agent_ids: list[str] = []
        self.unoffered: set[str] = set()  # steps whose endpoint answered 404, undeclared
        self.answered = False  # whether any call got more than a 404
        self.stats: dict[str, int] = {}

    # --- plumbing ----------------------------------------------------------------------

    async def post(
        self, step: str, endpoint: str, call: str, url: str, body: Mapping[str, Any]
    ) -> Reply | None:
        """POST like Talkdesk; None (with a failure recorded) when no HTTP answer came."""
        limit = self.options.max_body_bytes
        started = time.perf_counter()
        try:
            async with self.client.stream(
                "POST",
                url,
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        self.rec.note(step, "fail", BODY, call, f"body over {limit} bytes")
                        return None
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            message = f"no answer within {self.options.timeout:g}s ({type(exc).__name__})"
            self.rec.note(step, "fail", TRANSPORT, call, message)
            return None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            detail = str(exc) or "no detail"
            self.rec.note(step, "fail", TRANSPORT, call, f"{type(exc).__name__}: {detail}")
            return None
        self.latency[endpoint].append(time.perf_counter() - started)
        self.answered |= response.status_code != 404
        return Reply(response.status_code, response.headers.get("content-type"), b"".join(chunks))

    def target(self, step: str, feature: str) -> Target | None:
        target = self.plan.endpoints[feature]
        if target.url is None:
            self.rec.note(step, "skip", NOT_OFFERED, feature, "not declared in the configuration")
            return None
        return target

    def not_offered(self, step: str, call: str, target: Target, reply: Reply) -> bool:
        """A 404 where no configuration declares the feature: the bridge does not offer it."""
        if reply.status == 404 and target.declared is not True:
            self.rec.note(step, "skip", NOT_OFFERED, call, "404: this bridge does not offer it")
            self.unoffered.add(step)
            return True
        return False

    # --- the steps ---------------------------------------------------------------------

    async def execute(self) -> None:
        await self.validate_auth()
        checkpoint = await self.sync_contacts(STEP_FULL, "contact_sync", None)
        if checkpoint is not None:
            await self.sync_contacts(STEP_INCREMENTAL, "incremental contact_sync", checkpoint)
        elif (
            self.plan.endpoints["contact_sync"].url is not None and STEP_FULL not in self.unoffered
        ):
            self.rec.note(
                STEP_INCREMENTAL,
                "skip",
                RUN,
                "incremental contact_sync",
                "not run: the full sync ended without a checkpoint to continue from",
            )
        await self.retrieve_interactions()
        await self.sync_agents()
        await self.run_actions()
        if self.unoffered and not self.answered:
            # Otherwise a mistyped URL would "pass" with everything skipped.
            message = "every endpoint answered 404: is this the integration's base URL?"
            self.rec.note(STEP_SETUP, "fail", NOT_OFFERED, "all endpoints", message)

    async def validate_auth(self) -> None:
        step = STEP_AUTH
        target = self.target(step, "auth_validation")
        if target is None or target.url is None:
            return
        call = "auth_validation (good credentials)"
        reply = await self.post(step, "auth_validation", call, target.url, {"auth": self.auth})
        if reply is None or self.not_offered(step, call, target, reply):
            return
        verdict, body = judge_reply(
            call, reply, (200, 204), "object" if reply.status == 200 else None
        )
        self.rec.add(step, verdict)
        if isinstance(body, dict):
            declared = self.plan.auth_fields
            allowed = set(self.auth) | set(declared or ())
            self.rec.add(step, judge_auth_body(call, body, allowed, declared=declared is not None))
            # Talkdesk stores returned auth fields and sends them on every later call.
            returned = {k: v for k, v in body.items() if k in allowed}
            self.mask.add(returned.values())
            self.auth.update(returned)

        call = "auth_validation (bad credentials)"
        if self.plan.authentication_type == "none":
            self.rec.note(step, "skip", RUN, call, "authentication_type is none")
            return
        bad = self.bad_auth()
        if bad is None:
            self.rec.note(step, "skip", RUN, call, "no credentials to spoil (give --auth)")
            return
        reply = await self.post(step, "auth_validation", call, target.url, {"auth": bad})
        if reply is None:
            return
        hint = "bad credentials were accepted" if reply.status in (200, 204) else None
        verdict, _ = judge_reply(call, reply, (401,), None, hint=hint)
        self.rec.add(step, verdict)

    def bad_auth(self) -> dict[str, Any] | None:
        overrides = dict(self.options.bad_auth or {})
        if not self.auth and not overrides:
            return None
        if overrides:
            return {**self.auth, **overrides}
        spoiled = {key: "bad-" + secrets.token_urlsafe(12) for key in self.auth}
        self.mask.add(spoiled.values())
        return spoiled

    async def sync_contacts(self, step: str, label: str, checkpoint: str | None) -> str | None:
        """One run, page by page as Talkdesk does; the last page's checkpoint if it ended."""
        target = self.target(step, "contact_sync")
        if target is None or target.url is None:
            return None
        base: dict[str, Any] = {}
        if checkpoint is not None:
            base["synchronization_checkpoint"] = checkpoint
        meta = dict(base)
        duplicates = DuplicateTracker()
        followed: dict[tuple[str, bytes], int] = {}
        full = checkpoint is None
        total = 0
        page = 0
        if self.progress:
            self.progress.start(step, "contacts")
        try:
            while True:
                page += 1
                call = f"{label} page {page}"
                if page > self.options.max_pages:
                    self.rec.note(
                        step,
                        "fail",
                        PAGING,
                        call,
                        f"still a next_offset after {self.options.max_pages} pages: "
                        "an endless loop (or raise --max-pages)",
                    )
                    return None
                body = {"auth": self.auth, "meta": meta}
                reply = await self.post(step, "contact_sync", call, target.url, body)
                if reply is None or (page == 1 and self.not_offered(step, call, target, reply)):
                    return None
                verdict, decoded = judge_reply(call, reply, (200,), "object")
                self.rec.add(step, verdict)
                if decoded is None:
                    return None
                verdict, info = judge_contact_page(call, decoded, duplicates)
                self.rec.add(step, verdict)
                total += info.received
                await self.keep(info, full)
                self.stats[f"contacts_{'full' if full else 'incremental'}"] = total
                self.stats[f"contact_pages_{'full' if full else 'incremental'}"] = page
                if self.progress:
                    self.progress.update(step, page, total)
                if not info.usable:
                    return None
                if info.next_offset is None:
                    self.rec.note(step, "pass", PAGING, call, "")
                    if self.store and info.checkpoint is not None:
                        await asyncio.to_thread(self.store.set_state, "checkpoint", info.checkpoint)
                    return info.checkpoint
                key = (info.next_offset, canonical(info.context if info.has_context else None))
                if key in followed:
                    self.rec.note(
                        step,
                        "fail",
                        PAGING,
                        call,
                        f"endless loop: this next_offset was already followed after page "
                        f"{followed[key]}",
                        "next_offset",
                    )
                    return None
                followed[key] = page
                meta = {**base, "offset": info.next_offset}
                if info.has_context:
                    meta["context"] = info.context
        finally:
            if self.progress:
                self.progress.finish(step)

    async def keep(self, info: ContactPageInfo, full: bool) -> None:
        if full:
            for contact in info.contacts:
                self.sampler.offer(contact)
        if self.store and info.contacts:
            await asyncio.to_thread(self.store.upsert, info.contacts)

    async def retrieve_interactions(self) -> None:
        step = STEP_INTERACTIONS
        target = self.target(step, "interaction_update")
        if target is None or target.url is None:
            return
        sample = self.sampler.pick()
        if not sample:
            self.rec.note(step, "skip", RUN, "interaction_update", "no synced contact to ask about")
            return
        types = list(self.plan.interaction_types)
        first = True
        found = 0
        for contact in sample:
            by_details: dict[str, Any] = {
                "contact_emails": [e for e in contact.get("emails") or [] if isinstance(e, str)],
                "contact_phones": [p for p in contact.get("phones") or [] if isinstance(p, str)],
            }
            if isinstance(contact.get("name"), str):
                by_details["contact_name"] = contact["name"]
            for how, data in (
                ("by id", {"contact_external_id": contact["id"]}),
                ("by emails/phones", by_details),
            ):
                call = f"interaction_update contact {contact['id']} {how}"
                body = {"auth": self.auth, "meta": {"interaction_types": types}, "data": data}
                reply = await self.post(step, "interaction_update", call, target.url, body)
                if reply is None or (first and self.not_offered(step, call, target, reply)):
                    return
                first = False
                verdict, decoded = judge_reply(call, reply, (200,), "array")
                self.rec.add(step, verdict)
                if reply.status >= 500:
                    return
                if decoded is not None:
                    self.rec.add(step, judge_interactions(call, decoded, types))
                    found += len(decoded)
        self.stats["interactions"] = found

    async def sync_agents(self) -> None:
        step = STEP_AGENTS
        target = self.target(step, "agent_sync")
        if target is None or target.url is None:
            return
        duplicates = DuplicateTracker()
        offset: int | None = None
        followed: dict[int, int] = {}
        total = 0
        page = 0
        if self.progress:
            self.progress.start(step, "agents")
        try:
            while True:
                page += 1
                call = f"agent_sync page {page}"
                if page > self.options.max_pages:
                    message = (
                        f"still a next_offset after {self.options.max_pages} pages: "
                        "an endless loop (or raise --max-pages)"
                    )
                    self.rec.note(step, "fail", PAGING, call, message)
                    return
                body = {"auth": self.auth, "meta": {"offset": offset}}
                reply = await self.post(step, "agent_sync", call, target.url, body)
                if reply is None or (page == 1 and self.not_offered(step, call, target, reply)):
                    return
                verdict, decoded = judge_reply(call, reply, (200,), "object")
                self.rec.add(step, verdict)
                if decoded is None:
                    return
                verdict, info = judge_agent_page(call, decoded, duplicates)
                self.rec.add(step, verdict)
                self.collect_agents(info)
                total += len(info.agents)
                self.stats["agents"] = total
                if self.progress:
                    self.progress.update(step, page, total)
                if not info.usable:
                    return
                if info.next_offset is None:
                    self.rec.note(step, "pass", PAGING, call, "")
                    return
                if info.next_offset in followed:
                    message = (
                        f"endless loop: next_offset {info.next_offset} was already followed "
                        f"after page {followed[info.next_offset]}"
                    )
                    self.rec.note(step, "fail", PAGING, call, message, "next_offset")
                    return
                followed[info.next_offset] = page
                offset = info.next_offset
        finally:
            if self.progress:
                self.progress.finish(step)

    def collect_agents(self, info: AgentPageInfo) -> None:
        for agent in info.agents:
            if len(self.agent_ids) < 10:
                self.agent_ids.append(agent["id"])

    async def run_actions(self) -> None:
        step = STEP_ACTIONS
        if not self.options.actions:
            self.rec.note(step, "skip", RUN, "actions", "not run (give --actions)")
            return
        if self.plan.actions is None:
            message = "no action list: the bridge has no GET configuration (give --configuration)"
            self.rec.note(step, "skip", RUN, "actions", message)
            return
        if not self.plan.actions:
            self.rec.note(step, "skip", RUN, "actions", "the configuration declares none")
            return
        meta: dict[str, str] = {}
        sample = self.sampler.pick()
        if sample:
            meta["contact_external_id"] = sample[0]["id"]
        if self.agent_ids:
            meta["agent_external_id"] = self.agent_ids[0]
        ran = 0
        for action in self.plan.actions:
            # The mandatory inputs, plus the caller's details an automation would pass along
            # (a contact-creating action may need one of several optional ones).
            details = tuple(
                (key, label)
                for key, label in action.optional
                if any(word in key.lower() for word in _CALLER_DETAILS)
            )
            data = {
                key: sample_input(key, label, serial)
                for serial, (key, label) in enumerate(action.mandatory + details)
            }
            call = f"action {action.name}"
            body = {"auth": self.auth, "meta": meta, "data": data}
            reply = await self.post(step, f"actions/{action.name}", call, action.url, body)
            if reply is None:
                return
            ran += 1
            verdict, decoded = judge_reply(call, reply, (201,), "object")
            self.rec.add(step, verdict)
            if decoded is not None:
                self.rec.add(step, judge_action_result(call, decoded))
            if reply.status >= 500:
                return
        self.stats["actions"] = ran


async def _fetch_configuration(
    client: httpx.AsyncClient, base: str
) -> tuple[Configuration | None, str]:
    """The bridge's own GET configuration (ours serves one), for actions and types."""
    url = join_url(base, "configuration")
    shown = display_url(url)
    try:
        response = await client.get(url)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, f"none (GET {shown}: {type(exc).__name__})"
    if response.status_code != 200:
        return None, f"none (GET {shown}: {response.status_code})"
    try:
        return parse_configuration(orjson.loads(response.content), authoritative_urls=False), (
            f"GET {shown}"
        )
    except (orjson.JSONDecodeError, PlanError) as exc:
        return None, f"none (GET {shown}: unusable: {exc})"


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PlanError(f"not an http(s) URL: {display_url(url)!r}")


async def run_check(
    options: CheckOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: ProgressHook | None = None,
) -> CheckReport:
    """Run every step against the bridge. Raises `PlanError`/`StoreError` for unusable options."""
    if options.url is not None:
        _check_url(options.url)
    mask = _Masker()
    mask.add(options.auth.values())
    mask.add((options.bad_auth or {}).values())
    recorder = _Recorder(mask)
    plan: Plan | None = None
    source = "none"
    if options.configuration is not None:
        plan = build_plan(options.url, options.configuration, options.paths, options.action_path)
        source = "file (its endpoint URLs)"
    timeout = httpx.Timeout(options.timeout, connect=min(options.timeout, 10.0))
    store = await asyncio.to_thread(ContactStore.open, options.store) if options.store else None
    try:
        async with httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,  # Talkdesk posts to the URL configured, as is
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
        ) as client:
            if plan is None:
                assert options.url is not None
                configuration, source = await _fetch_configuration(client, options.url)
                plan = build_plan(options.url, configuration, options.paths, options.action_path)
            _note_plain_http(recorder, plan)
            run = _Run(options, plan, client, recorder, mask, progress, store)
            await run.execute()
            if store is not None:
                run.stats["stored_contacts"] = await asyncio.to_thread(store.count)
    finally:
        if store is not None:
            await asyncio.to_thread(store.close)
    return CheckReport(
        target=display_url(options.url) if options.url else "(URLs from the configuration file)",
        configuration=source,
        rows=list(recorder.rows.values()),
        findings=recorder.findings,
        latency=latency_stats(run.latency),
        stats={
            **run.stats,
            **({"findings_not_listed": recorder.omitted} if recorder.omitted else {}),
        },
    )


def _note_plain_http(recorder: _Recorder, plan: Plan) -> None:
    urls = [t.url for t in plan.endpoints.values() if t.url]
    urls += [a.url for a in plan.actions or ()]
    plain = sorted(
        {display_url(u) for u in urls if u.startswith("http://") and not _is_loopback(u)}
    )
    for url in plain:
        recorder.note(STEP_SETUP, "warn", HTTPS, url, "Talkdesk calls only https endpoints")

"""Vendor sandboxes: faithful fakes of the APIs behind the bridge's connectors.

Tests, benchmarks and people trying the bridge point a connector at a sandbox instead of the
real vendor::

    from talkdesk_sandbox import load_sandbox

    sandbox = load_sandbox("intercom", token="t", latency=0.02)
    sandbox.seed(contacts=1000, seed=1)
    with sandbox.serve() as base_url:          # or httpx.ASGITransport(app=sandbox.app)
        env = sandbox.bridge_env(base_url)     # TALKDESK_BRIDGE_INTERCOM_BASE_URL=...
        auth = sandbox.credentials()           # {"access_token": "t"}

or from a shell: ``python -m talkdesk_sandbox intercom --port 8765 --contacts 1000``.

Writing a vendor sandbox
========================

A sandbox is a sub-package ``talkdesk_sandbox/<connector>/`` that keeps only what is the
vendor's own: object shapes, its query language and cursors, its error bodies and headers.
The kit provides the rest. Take ``talkdesk_sandbox/intercom/`` as the worked example.

1. **State.** Keep each synchronized resource in a ``VersionedStore`` (records by id; every
   create/update/delete appends a ``Version`` stamped by the injected clock). Direct reads
   (``get``, ``live_page`` in creation order) are live; list/search/export reads (``scan``
   sorted by (modified, id), ``visible``, ``tombstones``, or the ``SortedIndex`` passed as
   ``index``) see a write only ``lag`` seconds after it, or ``delay`` seconds for a late
   commit (``update(id, record, delay=600)``). ``load`` bulk-seeds historic records. Pass
   your own ``RLock`` as ``lock`` to change other state atomically with the store. For a
   search API, give the store a ``SortedIndex`` whose fields your queries sort by and compile
   queries into a ``Query`` (predicate, cache key, optional key-interval plan built with
   ``value_span``/``merge_intervals``/``NEG_INF``...): paging costs O(log n + page).

2. **The facade.** Subclass ``VendorSandbox`` and write:

   - ``build_app()``: the routes, usually ``vendor_app(self, routes, errors={...})`` (404s,
     405s and your exceptions answer in the vendor's shape; routes reach the sandbox at
     ``request.app.state.sandbox``; ``json_response`` renders JSON);
   - ``authenticate(call)``: the account or token a call's credentials belong to (the key of
     its rate-limit window), or None for the vendor's 401;
   - ``error_reply(status, message=None)``: the vendor's error ``Reply`` for a bare status
     (401, 429, injected failures, 404);
   - optionally ``rate_headers(state)`` (stamped on every answer past auth),
     ``rate_limited(state)`` (the vendor's 429; the default adds ``Retry-After``),
     ``unauthorized(call)``, ``check_rate(account, call)`` (several windows, per-endpoint
     limits) and ``record(call)`` (to remember headers such as an API version).

   ``__init__`` passes ``clock``, ``latency`` and ``rate_limit=(calls, seconds)`` (windows per
   account) to ``super().__init__``. The facade then has, for free: ``app`` (your routes
   behind the ``Gateway``: call log, latency, hangs, auth, rate limit, faults, in that order,
   all before the route runs so a failed call has no side effect), ``serve()``, ``calls`` /
   ``call_count`` / ``call_counts`` / ``reset_calls``, and the fault controls ``fail_next``,
   ``rate_limit_burst``, ``hang_next``, ``malformed_next`` (truncated body), ``garble_next``,
   ``reset_next``, ``cut_next``, ``trickle_next`` (socket faults need ``serve()``),
   ``random_failures`` and ``reset_faults``, each by method and path prefix, n times.

3. **The protocol.** Implement ``Sandbox`` on the facade (or a subclass, as
   ``IntercomSandbox``): ``connector``; ``seed(contacts=, seed=)`` with ``Faker`` people
   (several emails and phones in mixed formats, companies), interactions and agents;
   ``credentials()``, ``bad_credentials()``, ``bridge_env(base_url)``. The factory takes the
   keyword options ``token``, ``latency`` (seconds per call), ``clock``, ``lag`` and
   ``rate_limit`` (calls per the vendor's usual window; None: unlimited), plus any of its own.

4. **Register** it in ``SANDBOXES`` (``"name": "talkdesk_sandbox.name:NameSandbox"``): the
   CLI, the bridge's ``demo --connector NAME`` and the generic tests pick it up from there.

Times are unix seconds from the injected ``Clock`` (``wall_clock`` or a ``ManualClock`` that
tests advance), except ``latency`` and fault sleeps, which are real.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from ._clock import Clock, ManualClock, wall_clock
from ._faults import FAULT_KINDS, FaultPlan, FaultRule
from ._gateway import Call, Gateway, Reply, Served
from ._index import (
    HIGH_ID,
    LOW_ID,
    NEG_INF,
    POS_INF,
    Interval,
    Key,
    Page,
    Query,
    SortedIndex,
    intersect_intervals,
    merge_intervals,
    sort_key,
    value_span,
)
from ._rate import RateLimiter, RateState
from ._registry import SANDBOXES, Sandbox, UnknownSandboxError, load_sandbox
from ._sandbox import VendorSandbox, json_response, reply_response, vendor_app
from ._seed import PLACES, SUBJECTS, Company, Email, Faker, Person, Phone, Place, ascii_slug
from ._server import serve_app
from ._store import LivePage, Version, VersionedStore

__all__ = [
    "FAULT_KINDS",
    "HIGH_ID",
    "LOW_ID",
    "NEG_INF",
    "PLACES",
    "POS_INF",
    "SANDBOXES",
    "SUBJECTS",
    "ASGIApp",
    "Call",
    "Clock",
    "Company",
    "Email",
    "Faker",
    "FaultPlan",
    "FaultRule",
    "Gateway",
    "Interval",
    "Key",
    "LivePage",
    "ManualClock",
    "Page",
    "Person",
    "Phone",
    "Place",
    "Query",
    "RateLimiter",
    "RateState",
    "Reply",
    "Sandbox",
    "Served",
    "SortedIndex",
    "UnknownSandboxError",
    "VendorSandbox",
    "Version",
    "VersionedStore",
    "ascii_slug",
    "intersect_intervals",
    "json_response",
    "load_sandbox",
    "merge_intervals",
    "reply_response",
    "serve_app",
    "sort_key",
    "value_span",
    "vendor_app",
    "wall_clock",
]

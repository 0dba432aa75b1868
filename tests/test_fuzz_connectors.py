"""Hostile values on every registered connector: every auth field gets arbitrary Unicode
(control characters, lone surrogates escaped in JSON, full-width and combining characters, very
long strings) on every endpoint the connector's configuration declares, and so do X-Request-ID,
query strings and path segments. No answer is ever a 500, every answer is JSON, and a
credential value never comes back in a body.

Connectors come from the registry: one without a setup in `tests/_support.connector_client`
fails here. Example counts are bounded for CI.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_from_bytes, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkdesk_bridge.connectors import REGISTRY
from tests._support import ConnectorClient, connector_client

DOCUMENTED_5XX = {502, 503, 504}
SECRET = "inbound-secret-0123"
_UNSENDABLE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Values this short may turn up in any message by chance ("us" in "must").
ECHO_CHECK_MIN = 6

# The reproductions, and their neighbours.
HOSTILE: list[Any] = [
    "\u0000",
    "ｅｖｉｌ",  # noqa: RUF001 (full-width on purpose)
    "\ud800",
    "\udfff\ud800",
    "token\r\nX-Injected: 1",
    "tok en",
    "\x7f",
    "e\u0301vil-combining",
    "\u200bzero-width",
    "\ufeffbom",
    "x" * 5000,
    "\u00e9" * 300,
    "  ",
    1,
    1.5,
    True,
    None,
    [],
    {"nested": "value"},
]

examples = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

any_text = st.text(st.characters(exclude_categories=[]), max_size=60)  # surrogates included
odd_text = st.text(
    st.one_of(
        st.characters(categories=["Cc", "Cf", "Cs", "Mn", "Zs", "Zl", "Zp"]),
        st.sampled_from("ｅｖｉｌ０１２ＡＢ\u0301\u0308\ufeff\u00a0\u2028"),  # noqa: RUF001
    ),
    min_size=1,
    max_size=20,
)
credential_values = st.one_of(
    any_text,
    odd_text,
    st.tuples(st.text("abcXYZ019-_.~", min_size=1, max_size=20), odd_text).map("".join),
    st.integers(4000, 20_000).map(lambda n: "t" * n),
    st.none() | st.integers() | st.booleans() | st.lists(st.text(max_size=5), max_size=3),
)


@dataclass(frozen=True)
class Target:
    connector: ConnectorClient
    endpoints: list[str]  # every POST path the configuration declares
    fields: list[str]  # every auth field the configuration declares

    def body(self, endpoint: str, auth: dict[str, Any]) -> dict[str, Any]:
        """A request that passes the contract's shape, so auth is all that can stop it."""
        if endpoint.endswith("/interaction_update"):
            return {"auth": auth, "meta": {}, "data": {"contact_emails": ["a@example.com"]}}
        if "/actions/" in endpoint:
            return {"auth": auth, "meta": {}, "data": {"subject": "s", "name": "n", "body": "b"}}
        return {"auth": auth, "meta": {}}

    async def post(self, endpoint: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        # The standard library escapes lone surrogates as \\ud800; the bridge must cope.
        content = json.dumps(body).encode()
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return await self.connector.client.post(
            endpoint, content=content, headers=headers, **kwargs
        )


def describe(configuration: dict[str, Any]) -> tuple[list[str], list[str]]:
    integration = configuration["integration"]
    urls = [v for k, v in integration.items() if k.endswith("_endpoint")]
    urls += [a["endpoint"] for a in configuration["actions"]]
    fields = [
        key for entry in integration.get("authentication_configuration") or [] for key in entry
    ]
    return [urlsplit(url).path for url in urls], fields


@pytest.fixture(params=list(REGISTRY))
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    async with connector_client(request.param) as connector:
        answer = await connector.client.get(f"/{connector.name}/configuration")
        assert answer.status_code == 200
        endpoints, fields = describe(answer.json())
        assert endpoints and set(connector.auth) <= set(fields)
        yield Target(connector, endpoints, fields)


def assert_sane(response: httpx.Response, value: Any = None) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 500 or response.status_code in DOCUMENTED_5XX, response.text
    assert response.headers["content-type"] == "application/json"
    # A real server (h11) refuses to send these: over the wire that answer would be a 500.
    assert not any(_UNSENDABLE.search(raw) for _, raw in response.headers.raw)
    body = response.json()
    if response.status_code >= 400:
        assert "error" in body or "message" in body
    if isinstance(value, str) and len(value.strip()) >= ECHO_CHECK_MIN:
        assert value not in response.text
        assert json.dumps(value)[1:-1] not in response.text
        assert json.dumps(value, ensure_ascii=False)[1:-1] not in response.text


def _lone_surrogates(value: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in value)


async def test_hostile_credentials_on_every_endpoint(target: Target) -> None:
    """The issue's values (and neighbours) in each auth field, on each endpoint: never a 500;
    a string no field accepts is a 401 naming the field (a lone surrogate: 400, not JSON that
    the bridge reads)."""
    for field in target.fields:
        for value in HOSTILE:
            auth = {**target.connector.auth, field: value}
            for endpoint in target.endpoints:
                response = await target.post(endpoint, target.body(endpoint, auth))
                assert_sane(response, value)
                if not isinstance(value, str):
                    continue
                if _lone_surrogates(value):
                    assert response.status_code == 400, (endpoint, field, response.text)
                else:
                    assert response.status_code == 401, (endpoint, field, response.text)
                    assert f"auth.{field}" in response.json()["error"]["message"]


@examples
@given(data=st.data(), value=credential_values)
async def test_fuzzed_credentials_never_500(
    target: Target, data: st.DataObject, value: Any
) -> None:
    field = data.draw(st.sampled_from(target.fields), label="field")
    endpoint = data.draw(st.sampled_from(target.endpoints), label="endpoint")
    auth = {**target.connector.auth, field: value}
    assert_sane(await target.post(endpoint, target.body(endpoint, auth)), value)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# Arbitrary bytes, and near misses: well-formed ids with one bad byte (a final newline slips
# past a "$"-anchored pattern), or one character too long.
request_ids = st.one_of(
    st.binary(max_size=300),
    st.from_regex(rb"\A[A-Za-z0-9._:-]{1,129}[\n\r\x00 \x7f\xff]?\Z"),
)


@examples
@given(data=st.data(), request_id=request_ids)
async def test_fuzzed_request_ids(target: Target, data: st.DataObject, request_id: bytes) -> None:
    endpoint = data.draw(st.sampled_from(target.endpoints), label="endpoint")
    response = await target.post(
        endpoint,
        target.body(endpoint, dict(target.connector.auth)),
        headers={"x-request-id": request_id},
    )
    assert_sane(response)
    echoed = response.headers["x-request-id"]
    assert _REQUEST_ID.fullmatch(echoed)
    if re.fullmatch(rb"[A-Za-z0-9._:-]{1,128}", request_id):
        assert echoed == request_id.decode()


@pytest.fixture(params=list(REGISTRY))
async def keyed_target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """As `target`, with the inbound secret on: its middleware parses every query string."""
    async with connector_client(request.param, inbound_secret=SECRET) as connector:
        answer = await connector.client.get(f"/{connector.name}/configuration?key={SECRET}")
        endpoints, fields = describe(answer.json())
        yield Target(connector, endpoints, fields)


@examples
@given(data=st.data(), query=st.binary(max_size=200), keyed=st.booleans())
async def test_fuzzed_query_strings(
    keyed_target: Target, data: st.DataObject, query: bytes, keyed: bool
) -> None:
    target = keyed_target
    endpoint = data.draw(st.sampled_from(target.endpoints), label="endpoint")
    # Bytes outside ASCII are percent-encoded (as on the wire); "%", "&", "=", "+" and ";" are
    # kept, so broken escapes, empty pairs and repeated keys arrive as sent.
    raw = quote_from_bytes(query, safe="%&=+;") + (f"&key={SECRET}" if keyed else "")
    response = await target.post(
        f"{endpoint}?{raw}", target.body(endpoint, dict(target.connector.auth))
    )
    assert_sane(response)
    assert SECRET not in response.text


@examples
@given(segment=any_text, where=st.sampled_from(["", "actions/", "configuration/"]))
async def test_fuzzed_path_segments(target: Target, segment: str, where: str) -> None:
    name = target.connector.name
    path = f"/{name}/{where}" + quote(segment.encode("utf-8", "surrogatepass"), safe="")
    for method in ("GET", "POST"):
        response = await target.connector.client.request(
            method, path, content=b'{"auth": {}}', headers={"content-type": "application/json"}
        )
        assert_sane(response)

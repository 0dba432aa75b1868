"""Hostile input: generated from the OpenAPI description (schemathesis) and raw bodies
(hypothesis). Nothing a client sends may produce a 5xx other than the documented upstream ones,
and every answer is JSON. Example counts are bounded for CI."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from talkdesk_bridge import create_app
from talkdesk_bridge.connectors.sql import SqlConnector
from tests._support import TOKEN, seed, sql_settings

DOCUMENTED_5XX = {502, 503, 504}


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    url = f"sqlite:///{path}"
    asyncio.run(seed(url, contacts=30))
    return url


@pytest.fixture
def fuzz_app(fuzz_db: str) -> Iterator[Starlette]:
    """The SQL demo app with its connector started here: the raw-body test calls it without
    lifespan, and schemathesis's client runs (and ends) the lifespan itself."""
    settings_ = sql_settings(fuzz_db, max_body_bytes=64 * 1024)
    connector = SqlConnector(settings_)
    asyncio.run(connector.start())
    try:
        yield create_app(settings_, connectors={"sql": connector})
    finally:
        asyncio.run(connector.close())


def test_openapi_fuzz(fuzz_app: Starlette) -> None:
    """Every operation of /openapi.json with schemathesis-generated requests."""
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:

        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            if isinstance(case.body, dict) and "auth" in case.body and len(str(case.body)) % 2:
                # Half the time with a valid token, so generated data reaches the connector.
                case.body["auth"] = {"api_token": TOKEN}
            response = case.call()
            assert response.status_code < 500 or response.status_code in DOCUMENTED_5XX
            assert response.headers["content-type"][0] == "application/json"
            body = response.json()
            if response.status_code >= 400:
                assert "error" in body or "message" in body

        check()


ENDPOINTS = [
    "/sql/auth_validation",
    "/sql/contact_sync",
    "/sql/interaction_update",
    "/sql/agent_sync",
    "/sql/actions/create_ticket",
    "/sql/actions/create_contact",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
field_names = st.sampled_from(
    [
        "auth",
        "meta",
        "data",
        "api_token",
        "offset",
        "synchronization_checkpoint",
        "contact_external_id",
        "contact_emails",
        "contact_phones",
        "interaction_types",
        "subject",
        "name",
        "email",
        "phone",
        "context",
    ]
)
shaped = st.recursive(
    json_values,
    lambda children: st.dictionaries(field_names, children, max_size=4),
    max_leaves=20,
)


def raw_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        shaped.map(lambda v: orjson.dumps({"auth": {"api_token": TOKEN}, "meta": v, "data": v})),
        shaped.map(orjson.dumps),
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 200_000).map(lambda n: b'{"auth": {"api_token": "' + b"x" * n + b'"}}'),
        st.just(b'{"auth": {"api_token": "a"}, "auth": {"api_token": "' + TOKEN.encode() + b'"}}'),
        st.sampled_from([b"NaN", b'{"meta": {"offset": NaN}}', b"\xff\xfe\x00", b"", b"null"]),
        st.integers(1, 100_000).map(
            lambda n: b'{"auth": {}, "data": {"contact_phones": ["' + b"9" * n + b'"]}}'
        ),
        st.integers(19, 400).map(lambda n: b'{"meta": {"offset": ' + b"9" * n + b"}}"),
    )


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=raw_bodies(),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "a/b; x=\x7f"]
    ),
)
def test_raw_bodies_never_5xx(
    fuzz_app: Starlette, endpoint: str, body: bytes, content_type: str
) -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=fuzz_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
            headers = {"content-type": content_type} if content_type else {}
            return await client.post(endpoint, content=body, headers=headers)

    response = asyncio.run(call())
    assert response.status_code < 500 or response.status_code in DOCUMENTED_5XX, response.text
    assert response.headers["content-type"] == "application/json"
    parsed = response.json()
    assert not (isinstance(parsed, float) and math.isnan(parsed))
    if response.status_code >= 400:
        assert "error" in parsed or "message" in parsed
        assert "Traceback" not in response.text

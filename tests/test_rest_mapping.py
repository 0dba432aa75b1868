"""The mapping file: extraction (JSON pointers, the JMESPath subset, templates), validation
that names the bad key, and the mappings the connector must refuse because they could lose
contacts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from talkdesk_bridge import Settings
from talkdesk_bridge._app import build_connectors
from talkdesk_bridge._errors import ConfigurationError
from talkdesk_bridge.connectors.rest.extract import (
    compile_expression,
    compile_template,
    read_text,
)
from talkdesk_bridge.connectors.rest.mapping import EXAMPLE_MAPPING, load_mapping, parse_mapping
from talkdesk_sandbox.rest import MAPPINGS

DOC: dict[str, Any] = {
    "data": [
        {"id": 1, "emails": [{"address": "a@x.example"}, {"address": "b@x.example"}]},
        {"id": 2, "emails": [], "tags": [["t1", "t2"], ["t3"]]},
    ],
    "a/b": {"~c": 5},
    "company": {"name": "Acme"},
}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("", DOC),
        ("/company/name", "Acme"),
        ("/data/1/id", 2),
        ("/a~1b/~0c", 5),
        ("/data/9/id", None),
        ("company.name", "Acme"),
        ("data[0].id", 1),
        ("data[*].id", [1, 2]),
        ("data[0].emails[].address", ["a@x.example", "b@x.example"]),
        ("data[].emails[].address", ["a@x.example", "b@x.example"]),
        ("data[1].tags[]", ["t1", "t2", "t3"]),
        ("data[*].missing", []),
        ("nothing.here", None),
        ("@", DOC),
    ],
)
def test_expressions(expression: str, value: Any) -> None:
    assert compile_expression(expression)(DOC) == value


@pytest.mark.parametrize("bad", ["a..b", ".a", "a[x]", "a b", "a[0]b", "x" * 300])
def test_bad_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_expression(bad)


def test_templates_and_joins() -> None:
    person = {"first": "Ana", "last": "Silva", "emails": ["a@x", "b@x"], "id": 7}
    assert read_text(compile_template("{first} {last}"), person) == "Ana Silva"
    assert read_text(compile_template("https://crm/{/id}?x={{y}}"), person) == "https://crm/7?x={y}"
    assert read_text(compile_template("{emails[]}"), person, ", ") == "a@x, b@x"
    assert read_text(compile_expression("emails"), person) == "a@x"
    assert read_text(compile_expression("emails"), person, "; ") == "a@x; b@x"
    assert read_text(compile_template("{missing}"), person) is None
    for bad in ("{", "a}", "{}"):
        with pytest.raises(ValueError):
            compile_template(bad)


def test_the_commented_example_is_the_pages_sandbox_mapping() -> None:
    """The README's example is what `demo --connector rest` runs: they cannot drift apart."""
    assert load_mapping(EXAMPLE_MAPPING) == load_mapping(MAPPINGS["pages"])
    for path in MAPPINGS.values():
        load_mapping(path)


def _raw(style: str = "pages") -> dict[str, Any]:
    return tomllib.loads(MAPPINGS[style].read_text())


def _refused(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_mapping(raw)
    return str(caught.value)


def test_a_list_without_a_modification_time_filter_is_refused() -> None:
    raw = _raw()
    del raw["contacts"]["filter"]
    raw["contacts"]["paging"] = {"style": "offset", "offset_param": "offset"}
    message = _refused(raw)
    assert "contacts" in message and "filter is required" in message
    assert "skip records" in message  # it says why


def test_a_list_not_sorted_by_modification_time_is_refused() -> None:
    raw = _raw()
    raw["contacts"]["sort"] = {"by": "id"}
    message = _refused(raw)
    assert "sort.by must be 'modified'" in message and "zero loss" in message
    del raw["contacts"]["sort"]
    assert "sort.by" in _refused(raw)


@pytest.mark.parametrize(
    ("where", "value", "named"),
    [
        (("api", "base_url"), "http://api.acme.example", "allow_http"),
        (("api", "base_url"), "https://user:pw@api.acme.example", "no credentials"),
        (("contacts", "path"), "https://evil.example/contacts", "contacts.path"),
        (("contacts", "path"), "/contacts/../admin", "contacts.path"),
        (("contacts", "path"), "/contacts?x=1", "contacts.path"),
        (("contacts", "records"), "data..x", "contacts.records"),
        (("contacts", "lag_seconds"), 0.5, "lag_seconds must be at least"),
        (("contacts", "unknown_key"), 1, "contacts.unknown_key"),
        (("auth", "type"), "digest", "auth.type"),
        (("api", "headers"), {"X-Bad": "line\nbreak"}, "api.headers"),
    ],
)
def test_bad_keys_are_named(where: tuple[str, str], value: Any, named: str) -> None:
    raw = _raw()
    raw[where[0]][where[1]] = value
    assert named in _refused(raw)


def test_actions_and_interactions_are_checked() -> None:
    raw = _raw()
    raw["actions"][0]["body"] = {"text": "{nope}"}
    assert "unknown placeholder(s) ['nope']" in _refused(raw)
    raw = _raw()
    raw["actions"][0]["path"] = "/contacts/{secret}/notes"
    assert "path: unknown placeholder" in _refused(raw)
    raw = _raw()
    raw["interactions"][0]["contact_param"] = "contact"  # and {contact_id} in the path
    assert "interactions.0" in _refused(raw)
    raw = _raw()
    raw["interactions"][1]["type"] = "ticket"
    assert "duplicate type" in _refused(raw)


def test_the_connector_refuses_to_start_on_a_bad_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(MAPPINGS["pages"].read_text().replace('by = "modified"', 'by = "none"'))
    with pytest.raises(ConfigurationError, match=r"sort\.by must be 'modified'"):
        build_connectors(Settings(connectors=["rest"], rest_mapping=bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("[api\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        build_connectors(Settings(connectors=["rest"], rest_mapping=broken))
    with pytest.raises(ConfigurationError, match="cannot read mapping file"):
        build_connectors(Settings(connectors=["rest"], rest_mapping=tmp_path / "missing.toml"))
    with pytest.raises(ConfigurationError, match="TALKDESK_BRIDGE_REST_BASE_URL"):
        build_connectors(Settings(connectors=["rest"], rest_base_url="http://127.0.0.1:1/x?q=1"))

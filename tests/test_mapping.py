"""Mapping files: the demo one loads; a bad one fails at start-up naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkdesk_bridge import ConfigurationError, Settings, create_app
from talkdesk_bridge.connectors.sql.mapping import DEMO_MAPPING, load_mapping
from tests._support import sql_settings

GOOD_CONTACTS = """
[contacts]
table = "people"
columns = { id = "person_id", name = "full_name", updated_at = "modified" }
emails = ["email"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_mapping_loads() -> None:
    mapping = load_mapping(DEMO_MAPPING)
    assert mapping.contacts is not None
    assert [i.type for i in mapping.interactions] == ["ticket", "call"]
    assert {a.name for a in mapping.actions} == {"create_ticket", "create_contact"}


def test_table_form_builds_a_select(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, GOOD_CONTACTS))
    assert mapping.contacts is not None
    assert mapping.contacts.select() == (
        "SELECT person_id AS id, full_name AS name, modified AS updated_at, email FROM people"
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[contacts]\nquery = 'SELECT 1'\ntable = 't'\n", "contacts"),
        ("[contacts]\nquery = 'SELECT 1'\nbogus = 1\n", "contacts.bogus"),
        ("[contacts]\ntable = 'x; DROP TABLE y'\ncolumns = {}\n", "contacts.table"),
        ("[contacts]\ntable = 'p'\ncolumns = { id = 'a', name = 'b' }\n", "updated_at"),
        ("[contacts]\nquery = 'SELECT 1'\nemails = { query = 'SELECT 1' }\n", ":ids"),
        ("[contacts]\nquery = 'SELECT 1'\nurl_template = 'x/{id.__class__}'\n", "url_template"),
        ("[[interactions]]\ntype = 'ticket'\nquery = 'SELECT 1'\n", ":contact_ids"),
        (
            "[[interactions]]\ntype = 'ticket'\nquery = 'SELECT :contact_ids'\n"
            "status = { a = 'done' }\n",
            "interactions.0.status.a",
        ),
        (
            "[[actions]]\nname = 'a'\ndisplay = 'x'\ndescription = 'y'\n"
            "statements = ['INSERT INTO t VALUES (:nope)']\n",
            "nope",
        ),
        ("[lookup]\nby_email = 'SELECT 1'\n", ":emails"),
        ("contacts = [", "not valid TOML"),
    ],
)
def test_bad_mapping_names_the_problem(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError, match=r"invalid mapping|not valid TOML") as info:
        load_mapping(path)
    assert named in str(info.value)


def test_bad_mapping_stops_start_up(tmp_path: Path) -> None:
    path = write(tmp_path, "[contacts]\nquery = 'SELECT 1'\nbogus = 1\n")
    with pytest.raises(ConfigurationError, match=r"contacts\.bogus"):
        create_app(sql_settings("sqlite+aiosqlite://", sql_mapping=path))
    with pytest.raises(ConfigurationError, match="cannot read mapping file"):
        create_app(sql_settings("sqlite+aiosqlite://", sql_mapping=tmp_path / "missing.toml"))


def test_mapping_without_interactions_serves_fewer_endpoints(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_CONTACTS)
    app = create_app(sql_settings("sqlite+aiosqlite://", sql_mapping=path))
    paths = {getattr(r, "path", "") for r in app.routes}
    assert "/sql/contact_sync" in paths and "/sql/auth_validation" in paths
    assert "/sql/interaction_update" not in paths and "/sql/agent_sync" not in paths
    assert not any(p.startswith("/sql/actions") for p in paths)
    assert isinstance(app.state.settings, Settings)

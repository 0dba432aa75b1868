"""The integration configuration of every registered connector, and its logo and icon.

Connectors come from the registry, so one added later is checked here without a test edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from talkdesk_bridge import ConfigurationError, Settings, create_app
from talkdesk_bridge._app import build_connectors
from talkdesk_bridge._configuration import build_configuration
from talkdesk_bridge._images import bundled_images
from talkdesk_bridge.cli import app as cli
from talkdesk_bridge.connectors import REGISTRY
from talkdesk_bridge.connectors.sql import SqlConnector
from talkdesk_bridge.connectors.sql.mapping import DEMO_MAPPING
from tests._support import connector_client

BASE = "https://bridge.example.com"
SECRET = "inbound-secret-0123"
AUTH_TYPES = {"none", "custom", "oauth2", "oauth2_password", "oauth2_client_credentials"}
AUTH_SOURCES = {"input", "default", "auth_validation"}


def configuration(name: str, **settings: Any) -> dict[str, Any]:
    """What `configuration NAME` prints, with the environment's settings plus `settings`."""
    built = Settings(**{"connectors": [name], **settings})
    connector = build_connectors(built, serving=False)[name]
    return build_configuration(connector, BASE, settings=built)


def assert_absolute(url: object, *, under: str | None = None) -> None:
    assert isinstance(url, str)
    parts = urlsplit(url)
    assert parts.scheme in ("https", "http") and parts.netloc, url
    if under is not None:
        assert url.startswith(under), url


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_mandatory_field_of_every_connector(name: str) -> None:
    """What the contract marks mandatory, for each registered connector (built to describe)."""
    doc = configuration(name)
    integration = doc["integration"]
    assert isinstance(integration, dict)
    for key in ("name", "display_name", "description"):
        assert isinstance(integration[key], str) and integration[key].strip(), key
    for key in ("logo_url", "icon_url"):
        assert_absolute(integration[key], under=f"{BASE}/{name}/")
    assert integration["authentication_type"] in AUTH_TYPES
    if integration["authentication_type"] == "custom":
        entries = integration["authentication_configuration"]
        assert isinstance(entries, list) and entries
        for entry in entries:
            ((key, field),) = entry.items()
            assert key and field["source"] in AUTH_SOURCES
            assert isinstance(field["display"], str) and field["display"]
            assert isinstance(field["mandatory"], bool) and isinstance(field["store"], bool)
            assert field["type"] in ("input", "oauth")
    for key, url in integration.items():
        if key.endswith("_endpoint"):
            assert_absolute(url, under=f"{BASE}/{name}/")
    actions = doc["actions"]
    assert isinstance(actions, list)
    for action in actions:
        assert action["provider"] == integration["name"]
        for key in ("name", "display", "description"):
            assert isinstance(action[key], str) and action[key].strip(), key
        assert_absolute(action["endpoint"], under=f"{BASE}/{name}/actions/")
        assert isinstance(action["inputs"], list)
        for item in action["inputs"]:
            assert isinstance(item["key"], str) and isinstance(item["name"], str)
            assert isinstance(item["mandatory"], bool)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_connector_ships_a_small_logo_and_icon(name: str) -> None:
    connector = build_connectors(Settings(connectors=[name]), serving=False)[name]
    images = bundled_images(connector)
    assert set(images) == {"logo", "icon"}
    for image in images.values():
        assert len(image.content) < 16 * 1024
        if image.media_type == "image/svg+xml":
            root = ElementTree.fromstring(image.content)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert b"<script" not in image.content
        else:
            assert image.media_type == "image/png" and image.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("name", list(REGISTRY))
async def test_images_are_served_open_with_caching_headers(name: str) -> None:
    """Talkdesk's UI loads them in a browser: no `?key=`, even with the inbound secret on."""
    async with connector_client(name, inbound_secret=SECRET) as connector:
        client = connector.client
        doc = (await client.get(f"/{name}/configuration?key={SECRET}")).json()
        for kind in ("logo", "icon"):
            url = doc["integration"][f"{kind}_url"]
            assert url == f"https://bridge.test/{name}/{kind}"  # no query string at all
            r = await client.get(url)
            assert r.status_code == 200
            assert r.headers["content-type"].startswith(("image/svg+xml", "image/png"))
            assert r.headers["cache-control"].startswith("public, max-age=")
            assert r.headers["x-content-type-options"] == "nosniff"
            etag = r.headers["etag"]
            assert etag.startswith('"') and r.content
            again = await client.get(url, headers={"if-none-match": f'W/"other", {etag}'})
            assert again.status_code == 304 and not again.content
            assert again.headers["etag"] == etag
            head = await client.head(url)
            assert head.status_code == 200 and not head.content
            assert (await client.post(url)).status_code == 405
        # Only the images are open: the rest still wants the key.
        assert (await client.get(f"/{name}/configuration")).status_code == 401


def test_the_configuration_command_prints_absolute_image_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TALKDESK_BRIDGE_SQL_API_TOKENS", raising=False)
    monkeypatch.setenv("TALKDESK_BRIDGE_INBOUND_SECRET", SECRET)
    runner = CliRunner()
    sql = runner.invoke(cli, ["configuration", "sql", "--public-url", "https://x"])
    assert sql.exit_code == 0, sql.output
    integration = json.loads(sql.output)["integration"]
    assert integration["logo_url"] == "https://x/sql/logo"
    assert integration["icon_url"] == "https://x/sql/icon"
    monkeypatch.setenv("TALKDESK_BRIDGE_PUBLIC_URL", "https://bridge.example.com/")
    intercom = runner.invoke(cli, ["configuration", "intercom"])
    assert intercom.exit_code == 0, intercom.output
    integration = json.loads(intercom.output)["integration"]
    assert integration["logo_url"] == "https://bridge.example.com/intercom/logo"
    assert integration["icon_url"] == "https://bridge.example.com/intercom/icon"


def test_operators_announce_their_own_images(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The settings (JSON maps by connector) win over the SQL mapping file, which wins over
    the bundled files."""
    monkeypatch.setenv("TALKDESK_BRIDGE_LOGO_URLS", '{"intercom": "https://cdn.example.com/i.png"}')
    announced = configuration("intercom")["integration"]
    assert announced["logo_url"] == "https://cdn.example.com/i.png"
    assert announced["icon_url"] == f"{BASE}/intercom/icon"
    monkeypatch.delenv("TALKDESK_BRIDGE_LOGO_URLS")

    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        DEMO_MAPPING.read_text(encoding="utf-8").replace(
            "[integration]\n",
            '[integration]\nlogo_url = "https://crm.example.com/logo.png"\n'
            'icon_url = "https://crm.example.com/icon.png"\n',
        ),
        encoding="utf-8",
    )
    own = configuration("sql", sql_mapping=mapping)["integration"]
    assert own["logo_url"] == "https://crm.example.com/logo.png"
    assert own["icon_url"] == "https://crm.example.com/icon.png"
    both = configuration(
        "sql", sql_mapping=mapping, icon_urls={"sql": "https://cdn.example.com/s.svg"}
    )["integration"]
    assert both["logo_url"] == "https://crm.example.com/logo.png"
    assert both["icon_url"] == "https://cdn.example.com/s.svg"


def test_bad_image_settings_stop_start_up() -> None:
    with pytest.raises(ConfigurationError, match=r"LOGO_URLS: unknown connector.*'sqll'"):
        build_connectors(Settings(connectors=["sql"], logo_urls={"sqll": "https://x/l.svg"}))
    with pytest.raises(ValidationError, match="absolute http"):
        Settings(icon_urls={"sql": "/relative/icon.svg"})


class UnbundledConnector(SqlConnector):
    """Defined in `tests`, a package without images: what a connector missing them looks like."""


def test_a_connector_without_a_logo_or_icon_cannot_start(sqlite_url: str) -> None:
    settings = Settings(sql_url=sqlite_url, sql_api_tokens=[SecretStr("t" * 20)])
    bare = UnbundledConnector(settings)
    with pytest.raises(ConfigurationError, match="has no logo"):
        create_app(settings, connectors={"sql": bare})
    with pytest.raises(ConfigurationError, match="TALKDESK_BRIDGE_ICON_URLS"):
        build_configuration(
            bare,
            BASE,
            settings=settings.model_copy(
                update={"logo_urls": {"sql": "https://cdn.example.com/l.svg"}}
            ),
        )
    announced = settings.model_copy(
        update={
            "logo_urls": {"sql": "https://cdn.example.com/l.svg"},
            "icon_urls": {"sql": "https://cdn.example.com/i.svg"},
        }
    )
    app = create_app(announced, connectors={"sql": bare})
    assert "/sql/logo" not in {getattr(r, "path", "") for r in app.routes}

"""What the overview says about each registered connector, enabled or not."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from .._configuration import build_configuration, serves_actions, supported_endpoints
from .._settings import Settings
from ..connectors import REGISTRY, Connector, load_factory

__all__ = ["AuthInput", "Card", "auth_inputs", "describe", "features", "readiness"]

# Which declared auth fields are secrets (password inputs): tokens, keys, passwords, and
# whatever Talkdesk obtains through OAuth.
_SECRET = re.compile(r"token|secret|password|key", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AuthInput:
    key: str
    label: str
    secret: bool
    required: bool
    help: str | None


def auth_inputs(connector: Connector) -> list[AuthInput]:
    return [
        AuthInput(
            f.key,
            f.display,
            secret=f.type == "oauth" or bool(_SECRET.search(f.key)),
            # A field auth validation fills in is optional here, as it is for the user.
            required=f.mandatory and f.source == "input",
            help=f.help or ("filled in by auth validation" if f.source != "input" else None),
        )
        for f in connector.info.auth_fields
        if f.source != "default"
    ]


def features(connector: Connector) -> list[str]:
    served = supported_endpoints(connector)
    if serves_actions(connector):
        served.append("actions: " + ", ".join(a.name for a in connector.info.actions))
    return served


@dataclass(frozen=True, slots=True)
class Card:
    name: str
    enabled: bool
    reason: str | None  # why it is not enabled
    display_name: str | None = None
    description: str | None = None
    authentication_type: str | None = None
    features: tuple[str, ...] = ()
    auth_fields: tuple[AuthInput, ...] = ()
    readiness: str | None = None  # "ok", or what is unavailable
    configuration: str | None = None  # the JSON to submit (enabled connectors)


def _not_enabled_reason(name: str, settings: Settings, skipped: Mapping[str, str]) -> str:
    if name in skipped:
        return skipped[name]
    if settings.connectors is not None and name not in settings.connectors:
        return "not listed in TALKDESK_BRIDGE_CONNECTORS"
    return "not enabled in this process"


def describe_disabled(name: str, settings: Settings) -> Connector | None:
    """The connector built only to describe it (as `talkdesk-bridge configuration` does), or
    None when even that fails (the reason says why)."""
    try:
        return load_factory(name)(settings, serving=False)
    except Exception:  # a connector that cannot be described is still listed, with its reason
        return None


async def readiness(connector: Connector) -> str:
    try:
        await asyncio.wait_for(connector.ready(), timeout=5)
    except Exception as exc:  # any failure means "not ready"; say which kind, as /readyz does
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def describe(
    settings: Settings,
    enabled: Mapping[str, Connector],
    skipped: Mapping[str, str],
    described: Mapping[str, Connector | None],
    base_url: str,
    query: str,
) -> list[Card]:
    names = [*REGISTRY, *(n for n in enabled if n not in REGISTRY)]
    ready = dict(
        zip(enabled, await asyncio.gather(*(readiness(c) for c in enabled.values())), strict=True)
    )
    cards = []
    for name in names:
        connector = enabled.get(name) or described.get(name)
        on = name in enabled
        if connector is None:
            cards.append(Card(name, on, _not_enabled_reason(name, settings, skipped)))
            continue
        info = connector.info
        configuration = None
        if on:
            document = build_configuration(connector, base_url, query=query, settings=settings)
            configuration = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
        cards.append(
            Card(
                name,
                on,
                None if on else _not_enabled_reason(name, settings, skipped),
                info.display_name,
                info.description,
                info.authentication_type,
                tuple(features(connector)),
                tuple(auth_inputs(connector)),
                ready.get(name),
                configuration,
            )
        )
    return cards

"""Connectors by name. Each lives in its own sub-package (client, mapping, connector)."""

from __future__ import annotations

import importlib

from .._errors import ConfigurationError
from ._base import (
    ActionSpec,
    Auth,
    Connector,
    ConnectorFactory,
    ConnectorInfo,
    ExecutesActions,
    RetrievesInteractions,
    SyncsAgents,
    SyncsContacts,
    ValidatesAuth,
    auth_value,
)

__all__ = [
    "REGISTRY",
    "ActionSpec",
    "Auth",
    "Connector",
    "ConnectorFactory",
    "ConnectorInfo",
    "ExecutesActions",
    "RetrievesInteractions",
    "SyncsAgents",
    "SyncsContacts",
    "ValidatesAuth",
    "auth_value",
    "load_factory",
]

# name -> "module:factory"; imported lazily so one connector's drivers never slow another's start.
REGISTRY: dict[str, str] = {
    "sql": "talkdesk_bridge.connectors.sql:SqlConnector",
    "intercom": "talkdesk_bridge.connectors.intercom:IntercomConnector",
}


def load_factory(name: str) -> ConnectorFactory:
    try:
        target = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigurationError(f"unknown connector {name!r} (known: {known})") from None
    module_name, _, attr = target.partition(":")
    factory: ConnectorFactory = getattr(importlib.import_module(module_name), attr)
    return factory

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
    CredentialKind,
    ExecutesActions,
    RetrievesInteractions,
    SyncsAgents,
    SyncsContacts,
    ValidatesAuth,
    auth_choice,
    auth_value,
    credential_ok,
)

__all__ = [
    "REGISTRY",
    "ActionSpec",
    "Auth",
    "Connector",
    "ConnectorFactory",
    "ConnectorInfo",
    "CredentialKind",
    "ExecutesActions",
    "RetrievesInteractions",
    "SyncsAgents",
    "SyncsContacts",
    "ValidatesAuth",
    "auth_choice",
    "auth_value",
    "credential_ok",
    "load_factory",
]

# name -> "module:factory"; imported lazily so one connector's drivers never slow another's start.
REGISTRY: dict[str, str] = {
    "sql": "talkdesk_bridge.connectors.sql:SqlConnector",
    "intercom": "talkdesk_bridge.connectors.intercom:IntercomConnector",
    "salesforce": "talkdesk_bridge.connectors.salesforce:SalesforceConnector",
    "zendesk": "talkdesk_bridge.connectors.zendesk:ZendeskConnector",
    "google": "talkdesk_bridge.connectors.google:GoogleConnector",
    "hubspot": "talkdesk_bridge.connectors.hubspot:HubSpotConnector",
    "highrise": "talkdesk_bridge.connectors.highrise:HighriseConnector",
    "rest": "talkdesk_bridge.connectors.rest:RestConnector",
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

"""Where to call: the bridge's endpoints from our default layout, a configuration, overrides.

Talkdesk calls exactly the endpoints an integration's configuration declares, so when one is
known, an undeclared feature is skipped; without one, every default path is tried and a 404
reads as "not offered".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_ACTION_PATH",
    "DEFAULT_INTERACTION_TYPES",
    "FEATURES",
    "ActionTarget",
    "Configuration",
    "Plan",
    "PlanError",
    "Target",
    "build_plan",
    "display_url",
    "join_url",
    "parse_configuration",
]

# feature (also our path segment) -> the configuration key that declares it
FEATURES: dict[str, str] = {
    "auth_validation": "auth_validation_endpoint",
    "contact_sync": "contact_synchronization_endpoint",
    "interaction_update": "interaction_retrieval_endpoint",
    "agent_sync": "agent_synchronization_endpoint",
}
DEFAULT_ACTION_PATH = "actions/{name}"
DEFAULT_INTERACTION_TYPES = ("ticket", "call", "conversation")


class PlanError(ValueError):
    """The configuration or the options cannot describe a bridge (a usage error)."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str | None  # None: nothing to call
    declared: bool | None  # None: no configuration says either way


@dataclass(frozen=True, slots=True)
class ActionTarget:
    name: str
    url: str
    mandatory: tuple[tuple[str, str], ...]  # (key, display name) of the inputs Talkdesk requires
    optional: tuple[tuple[str, str], ...] = ()  # the other declared inputs


@dataclass(frozen=True, slots=True)
class Configuration:
    integration: dict[str, Any]
    actions: list[dict[str, Any]] | None
    # A file gives the URLs to call; the bridge's own GET /configuration only says what it
    # declares (its absolute URLs name its public address, maybe unreachable from here).
    authoritative_urls: bool


@dataclass(frozen=True, slots=True)
class Plan:
    endpoints: Mapping[str, Target]
    actions: tuple[ActionTarget, ...] | None  # None: no action list known
    interaction_types: tuple[str, ...]
    auth_fields: frozenset[str] | None  # None: not declared anywhere
    authentication_type: str | None


def join_url(base: str, path: str) -> str:
    if urlsplit(path).scheme:
        return path
    return base.rstrip("/") + "/" + path.lstrip("/")


def display_url(url: str) -> str:
    """The URL with credentials that may ride in it (userinfo, query values) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_configuration(document: object, *, authoritative_urls: bool) -> Configuration:
    """`{"integration": {...}, "actions": [...]}` or the integration object alone."""
    if not isinstance(document, dict):
        raise PlanError("the configuration must be a JSON object")
    if "integration" in document:
        integration = document["integration"]
        actions = document.get("actions")
    else:
        integration, actions = document, None
    if not isinstance(integration, dict):
        raise PlanError("configuration: 'integration' must be an object")
    if actions is not None and not isinstance(actions, list):
        raise PlanError("configuration: 'actions' must be a list")
    for i, action in enumerate(actions or []):
        if not isinstance(action, dict) or not isinstance(action.get("name"), str):
            raise PlanError(f"configuration: actions[{i}] must be an object with a 'name'")
        inputs = action.get("inputs", [])
        if not isinstance(inputs, list) or not all(
            isinstance(item, dict) and isinstance(item.get("key"), str) for item in inputs
        ):
            raise PlanError(f"configuration: actions[{i}].inputs must be objects with a 'key'")
    for key in FEATURES.values():
        if key in integration and not isinstance(integration[key], str):
            raise PlanError(f"configuration: integration.{key} must be a URL string")
    return Configuration(integration, actions, authoritative_urls)


def _auth_fields(integration: Mapping[str, Any]) -> frozenset[str] | None:
    entries = integration.get("authentication_configuration")
    if not isinstance(entries, list):
        return None
    return frozenset(key for entry in entries if isinstance(entry, dict) for key in entry)


def _resolve(base: str | None, url: str) -> str:
    if urlsplit(url).scheme:
        return url
    if base is None:
        raise PlanError(f"the configuration's endpoint {url!r} is relative: give the bridge URL")
    return urljoin(base.rstrip("/") + "/", url)


def build_plan(
    base_url: str | None,
    configuration: Configuration | None,
    overrides: Mapping[str, str],
    action_path: str | None = None,
) -> Plan:
    """Endpoints to call. `overrides` maps a feature to a path (relative to the base URL)."""
    if base_url is None and (configuration is None or not configuration.authoritative_urls):
        raise PlanError("give the bridge URL (or --configuration with absolute endpoint URLs)")
    if (overrides or action_path) and base_url is None:
        raise PlanError("path overrides are relative to the bridge URL: give it")
    integration = configuration.integration if configuration else {}
    endpoints: dict[str, Target] = {}
    for feature, key in FEATURES.items():
        declared = None if configuration is None else key in integration
        if feature in overrides:
            assert base_url is not None
            url: str | None = join_url(base_url, overrides[feature])
        elif configuration is not None and configuration.authoritative_urls:
            url = _resolve(base_url, integration[key]) if declared else None
        elif declared is False:
            url = None
        else:
            assert base_url is not None
            url = join_url(base_url, feature)
        endpoints[feature] = Target(url, declared)

    actions: tuple[ActionTarget, ...] | None = None
    if configuration is not None and configuration.actions is not None:
        built = []
        for action in configuration.actions:
            name = action["name"]
            endpoint = action.get("endpoint")
            if action_path is not None or not (
                configuration.authoritative_urls and isinstance(endpoint, str)
            ):
                if base_url is None:
                    raise PlanError(f"action {name!r} has no endpoint: give the bridge URL")
                target = join_url(
                    base_url, (action_path or DEFAULT_ACTION_PATH).replace("{name}", name)
                )
            else:
                assert isinstance(endpoint, str)
                target = _resolve(base_url, endpoint)
            inputs = [
                (item["key"], str(item.get("name") or item["key"]), item.get("mandatory") is True)
                for item in action.get("inputs", [])
            ]
            built.append(
                ActionTarget(
                    name,
                    target,
                    tuple((key, label) for key, label, required in inputs if required),
                    tuple((key, label) for key, label, required in inputs if not required),
                )
            )
        actions = tuple(built)

    types = integration.get("interaction_types")
    interaction_types = (
        tuple(t for t in types if isinstance(t, str))
        if isinstance(types, list) and types
        else DEFAULT_INTERACTION_TYPES
    )
    auth_type = integration.get("authentication_type")
    return Plan(
        endpoints=endpoints,
        actions=actions,
        interaction_types=interaction_types or DEFAULT_INTERACTION_TYPES,
        auth_fields=_auth_fields(integration),
        authentication_type=auth_type if isinstance(auth_type, str) else None,
    )

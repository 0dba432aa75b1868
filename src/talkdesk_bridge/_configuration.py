"""The integration-configuration JSON an operator submits to Talkdesk."""

from __future__ import annotations

from typing import Any

from ._images import image_urls
from ._models import ActionConfiguration, IntegrationConfiguration
from ._settings import Settings
from .connectors import (
    Connector,
    ExecutesActions,
    RetrievesInteractions,
    SyncsAgents,
    SyncsContacts,
    ValidatesAuth,
)

__all__ = ["ENDPOINTS", "build_configuration", "serves_actions", "supported_endpoints"]

# path segment -> (configuration key, the protocol that provides it)
ENDPOINTS: dict[str, tuple[str, type]] = {
    "auth_validation": ("auth_validation_endpoint", ValidatesAuth),
    "contact_sync": ("contact_synchronization_endpoint", SyncsContacts),
    "interaction_update": ("interaction_retrieval_endpoint", RetrievesInteractions),
    "agent_sync": ("agent_synchronization_endpoint", SyncsAgents),
}


def _serves(connector: Connector, feature: str) -> bool:
    features = connector.info.features
    return features is None or feature in features


def supported_endpoints(connector: Connector) -> list[str]:
    return [
        path
        for path, (_, proto) in ENDPOINTS.items()
        if isinstance(connector, proto) and _serves(connector, path)
    ]


def serves_actions(connector: Connector) -> bool:
    return (
        isinstance(connector, ExecutesActions)
        and bool(connector.info.actions)
        and _serves(connector, "actions")
    )


def build_configuration(
    connector: Connector, base_url: str, *, query: str = "", settings: Settings | None = None
) -> dict[str, Any]:
    """`{"integration": {...}, "actions": [...]}` with absolute endpoint and image URLs.

    `query` (e.g. `key=...`) is appended to every endpoint: Talkdesk calls URLs exactly as given.
    Images stay open (a browser loads them), so their URLs never carry it. `settings` may
    override the images (`logo_urls`, `icon_urls`).
    """
    info = connector.info
    root = f"{base_url.rstrip('/')}/{info.name}"
    suffix = f"?{query}" if query else ""
    endpoints_served = supported_endpoints(connector)
    endpoints = {ENDPOINTS[path][0]: f"{root}/{path}{suffix}" for path in endpoints_served}
    images = image_urls(connector, root, settings)
    integration = IntegrationConfiguration(
        name=info.integration_name or info.name,
        display_name=info.display_name,
        description=info.description,
        logo_url=images["logo"],
        icon_url=images["icon"],
        authentication_type=info.authentication_type,
        authentication_configuration=(
            [{f.key: f.model_dump(exclude_none=True)} for f in info.auth_fields]
            if info.auth_fields
            else None
        ),
        interaction_types=(
            list(info.interaction_types) if "interaction_update" in endpoints_served else None
        ),
        **endpoints,
    )
    actions = (
        [
            ActionConfiguration(
                provider=info.integration_name or info.name,
                name=spec.name,
                display=spec.display,
                description=spec.description,
                endpoint=f"{root}/actions/{spec.name}{suffix}",
                inputs=list(spec.inputs),
            )
            for spec in info.actions
        ]
        if serves_actions(connector)
        else []
    )
    return {
        "integration": integration.model_dump(exclude_none=True),
        "actions": [a.model_dump(exclude_none=True) for a in actions],
    }

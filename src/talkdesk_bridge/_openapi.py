"""The service's OpenAPI description, built from the contract models for the enabled
connectors (served at /openapi.json; the fuzz tests generate requests from it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ._configuration import serves_actions, supported_endpoints
from ._models import (
    ActionRequest,
    ActionResult,
    AgentPage,
    AgentSyncRequest,
    AuthRequest,
    ContactPage,
    ContactSyncRequest,
    Interaction,
    InteractionRequest,
)
from .connectors import Connector

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_ACTION_FAILED = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
_ERRORS = {
    "400": "Malformed JSON",
    "401": "Missing or rejected credentials",
    "404": "Unknown connector or action",
    "413": "Body over the limit",
    "422": "A field of the wrong type",
    "502": "Upstream failed after retries",
    "503": "Upstream unavailable",
    "504": "Upstream timed out",
}

# path segment -> (request model, success status, response schema builder)
_OPERATIONS: dict[str, tuple[type[BaseModel], str, Any]] = {
    "auth_validation": (AuthRequest, "200", {"type": "object"}),
    "contact_sync": (ContactSyncRequest, "200", {"$ref": _REF.format(model="ContactPage")}),
    "interaction_update": (
        InteractionRequest,
        "200",
        {"type": "array", "items": {"$ref": _REF.format(model="Interaction")}},
    ),
    "agent_sync": (AgentSyncRequest, "200", {"$ref": _REF.format(model="AgentPage")}),
}


def _json(schema: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(name: str, request: type[BaseModel], status: str, schema: Any) -> dict[str, Any]:
    responses = {status: {"description": "Success", **_json(schema)}}
    for code, text in _ERRORS.items():
        responses[code] = {"description": text, **_json(_ERROR)}
    return {
        "post": {
            "operationId": name,
            "requestBody": {
                "required": True,
                **_json({"$ref": _REF.format(model=request.__name__)}),
            },
            "responses": responses,
        }
    }


def openapi_document(connectors: Mapping[str, Connector]) -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        AuthRequest,
        ContactSyncRequest,
        ContactPage,
        InteractionRequest,
        Interaction,
        AgentSyncRequest,
        AgentPage,
        ActionRequest,
        ActionResult,
    ]
    _, schemas = models_json_schema(
        [(m, "validation" if m.__name__.endswith("Request") else "serialization") for m in models],
        ref_template=_REF,
    )
    paths: dict[str, Any] = {}
    for name, connector in connectors.items():
        for endpoint in supported_endpoints(connector):
            request, status, schema = _OPERATIONS[endpoint]
            paths[f"/{name}/{endpoint}"] = _operation(f"{name}_{endpoint}", request, status, schema)
        if serves_actions(connector):
            for spec in connector.info.actions:
                operation = _operation(
                    f"{name}_action_{spec.name}",
                    ActionRequest,
                    "201",
                    {"$ref": _REF.format(model="ActionResult")},
                )
                operation["post"]["responses"]["400"] = {
                    "description": "The action failed, or malformed JSON",
                    **_json({"anyOf": [_ACTION_FAILED, _ERROR]}),
                }
                paths[f"/{name}/actions/{spec.name}"] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "talkdesk-bridge", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }

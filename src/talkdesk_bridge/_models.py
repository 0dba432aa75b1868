"""The Talkdesk Integrations API contract as typed models.

Requests ignore unknown fields (Talkdesk may add some); responses drop unset optional fields.
Both documented variants are accepted: auth validation may answer 200 with auth fields to store,
and agent sync may be paged with an integer `offset`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "ActionConfiguration",
    "ActionInput",
    "ActionMeta",
    "ActionRequest",
    "ActionResult",
    "Agent",
    "AgentPage",
    "AgentSyncMeta",
    "AgentSyncRequest",
    "AuthField",
    "AuthRequest",
    "Contact",
    "ContactPage",
    "ContactSyncMeta",
    "ContactSyncRequest",
    "IntegrationConfiguration",
    "Interaction",
    "InteractionData",
    "InteractionMeta",
    "InteractionRequest",
    "Priority",
    "Status",
]

Priority = Literal["none", "low", "normal", "high", "urgent"]
Status = Literal["new", "open", "pending", "solved", "closed"]

_REQUEST = ConfigDict(extra="ignore", frozen=True)
_RESPONSE = ConfigDict(extra="forbid")

# Auth values stay loosely typed here: each connector checks its own fields and answers 401.
Auth = dict[str, JsonValue]


class AuthRequest(BaseModel):
    model_config = _REQUEST
    auth: Auth = Field(default_factory=dict)


class ContactSyncMeta(BaseModel):
    model_config = _REQUEST
    synchronization_checkpoint: str | None = Field(default=None, max_length=4096)
    offset: str | None = Field(default=None, max_length=4096)
    context: JsonValue = None


class ContactSyncRequest(AuthRequest):
    meta: ContactSyncMeta = Field(default_factory=ContactSyncMeta)


class Contact(BaseModel):
    model_config = _RESPONSE
    id: str
    name: str
    company: str | None = None
    title: str | None = None
    # Always lists, empty when unknown: Talkdesk identifies callers by them.
    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    photo_url: str | None = None
    address: str | None = None
    websites: list[str] | None = None
    twitter: str | None = None
    url: str | None = None


class ContactPage(BaseModel):
    model_config = _RESPONSE
    contacts: list[Contact]
    synchronization_checkpoint: str
    next_offset: str | None = None
    context: JsonValue = None


class InteractionMeta(BaseModel):
    model_config = _REQUEST
    interaction_types: list[str] | None = Field(default=None, max_length=100)


class InteractionData(BaseModel):
    model_config = _REQUEST
    contact_external_id: str | None = Field(default=None, max_length=1024)
    contact_name: str | None = Field(default=None, max_length=1024)
    contact_emails: list[str] = Field(default_factory=list, max_length=100)
    contact_phones: list[str] = Field(default_factory=list, max_length=100)


class InteractionRequest(AuthRequest):
    meta: InteractionMeta = Field(default_factory=InteractionMeta)
    data: InteractionData = Field(default_factory=InteractionData)


class Interaction(BaseModel):
    model_config = _RESPONSE
    id: str
    subject: str
    date: str
    type: str
    description: str | None = None
    url: str | None = None
    priority: Priority | None = None
    status: Status | None = None


class ActionMeta(BaseModel):
    model_config = _REQUEST
    contact_external_id: str | None = Field(default=None, max_length=1024)
    agent_external_id: str | None = Field(default=None, max_length=1024)


class ActionRequest(AuthRequest):
    meta: ActionMeta = Field(default_factory=ActionMeta)
    data: dict[str, JsonValue] = Field(default_factory=dict)


class ActionResult(BaseModel):
    model_config = _RESPONSE
    message: str | None = None
    external_id: str | None = None
    contact_external_id: str | None = None
    contact_external_type: str | None = None
    contact_external_url: str | None = None


class AgentSyncMeta(BaseModel):
    model_config = _REQUEST
    offset: int | None = Field(default=None, ge=0)


class AgentSyncRequest(AuthRequest):
    meta: AgentSyncMeta = Field(default_factory=AgentSyncMeta)


class Agent(BaseModel):
    model_config = _RESPONSE
    id: str
    name: str
    email: str


class AgentPage(BaseModel):
    model_config = _RESPONSE
    agents: list[Agent]
    next_offset: int | None = None


# --- configuration documents ---------------------------------------------------------------


class AuthField(BaseModel):
    """One entry of `authentication_configuration` (serialized as `{key: {...}}`)."""

    model_config = _RESPONSE
    key: str = Field(exclude=True)
    display: str
    source: Literal["input", "default", "auth_validation"] = "input"
    mandatory: bool = True
    type: Literal["input", "oauth"] = "input"
    store: bool = True
    help: str | None = None
    format: str | None = None


class ActionInput(BaseModel):
    model_config = _RESPONSE
    key: str
    name: str
    mandatory: bool = False


class ActionConfiguration(BaseModel):
    model_config = _RESPONSE
    provider: str
    name: str
    display: str
    description: str
    endpoint: str
    inputs: list[ActionInput]


class IntegrationConfiguration(BaseModel):
    model_config = _RESPONSE
    name: str
    display_name: str
    description: str
    logo_url: str  # mandatory for Talkdesk, as is icon_url
    icon_url: str
    authentication_type: Literal[
        "none", "custom", "oauth2", "oauth2_password", "oauth2_client_credentials"
    ]
    authentication_configuration: list[dict[str, dict[str, Any]]] | None = None
    auth_validation_endpoint: str | None = None
    contact_synchronization_endpoint: str | None = None
    interaction_retrieval_endpoint: str | None = None
    agent_synchronization_endpoint: str | None = None
    interaction_types: list[str] | None = None

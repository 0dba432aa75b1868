"""What a connector is: a small protocol for its lifecycle, one protocol per Talkdesk feature.

A connector supports a feature by having its method; the app serves (and the configuration
announces) exactly the features a connector has, so adding one touches no route code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import httpx
from pydantic import JsonValue

from .._errors import Unauthorized
from .._models import (
    ActionInput,
    ActionMeta,
    ActionResult,
    AgentPage,
    AuthField,
    ContactPage,
    ContactSyncMeta,
    Interaction,
    InteractionData,
)
from .._settings import Settings

__all__ = [
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
    "action_specs",
    "auth_choice",
    "auth_value",
    "credential_ok",
]

Auth = Mapping[str, JsonValue]
AuthenticationType = Literal[
    "none", "custom", "oauth2", "oauth2_password", "oauth2_client_credentials"
]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    display: str
    description: str
    inputs: tuple[ActionInput, ...] = ()

    @property
    def mandatory(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.inputs if i.mandatory)


@dataclass(frozen=True)
class ConnectorInfo:
    name: str
    display_name: str
    description: str
    authentication_type: AuthenticationType
    auth_fields: tuple[AuthField, ...] = ()
    interaction_types: tuple[str, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    # Absolute URLs to announce instead of the package's logo.svg / icon.svg (see _images.py).
    logo_url: str | None = None
    icon_url: str | None = None
    # Talkdesk's unique system name, when it differs from the route prefix `name`.
    integration_name: str | None = None
    # Endpoint paths served, when fewer than the protocols the class implements (e.g. the SQL
    # connector serves only what its mapping file describes). None: all of them.
    features: frozenset[str] | None = None

    def action(self, name: str) -> ActionSpec | None:
        return next((a for a in self.actions if a.name == name), None)


class DeclaredInput(Protocol):
    """An action input as a mapping file declares it."""

    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def mandatory(self) -> bool: ...


class DeclaredAction(Protocol):
    """An action as a mapping file declares it (the SQL and REST mappings)."""

    @property
    def name(self) -> str: ...
    @property
    def display(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def inputs(self) -> Sequence[DeclaredInput]: ...


def action_specs(actions: Sequence[DeclaredAction]) -> tuple[ActionSpec, ...]:
    """The actions a mapping file declares, as the configuration announces them."""
    return tuple(
        ActionSpec(
            name=a.name,
            display=a.display,
            description=a.description,
            inputs=tuple(
                ActionInput(key=i.key, name=i.name, mandatory=i.mandatory) for i in a.inputs
            ),
        )
        for a in actions
    )


class Connector(Protocol):
    """Lifecycle every connector has. Long-lived resources are made in `start`."""

    info: ConnectorInfo

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ready(self) -> None:
        """Raise when a dependency (database, upstream host) cannot be reached."""


@runtime_checkable
class ValidatesAuth(Protocol):
    async def validate_auth(self, auth: Auth) -> dict[str, JsonValue]:
        """Auth fields for Talkdesk to store (often `{}`); raise `Unauthorized` if rejected."""


@runtime_checkable
class SyncsContacts(Protocol):
    async def sync_contacts(self, auth: Auth, meta: ContactSyncMeta) -> ContactPage: ...


@runtime_checkable
class RetrievesInteractions(Protocol):
    async def interactions(
        self, auth: Auth, types: tuple[str, ...], data: InteractionData
    ) -> list[Interaction]:
        """`types` is already narrowed to the requested types this connector knows."""


@runtime_checkable
class ExecutesActions(Protocol):
    async def run_action(
        self, action: ActionSpec, auth: Auth, meta: ActionMeta, data: Mapping[str, JsonValue]
    ) -> ActionResult: ...


@runtime_checkable
class SyncsAgents(Protocol):
    async def sync_agents(self, auth: Auth, offset: int | None) -> AgentPage: ...


class ConnectorFactory(Protocol):
    """Builds a connector; raises `ConfigurationError` naming the setting that is wrong.

    `serving=False` builds one only to describe it (its configuration JSON), so settings that
    matter only for serving requests (e.g. API tokens) are not required.
    """

    def __call__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        serving: bool = True,
    ) -> Connector: ...


# What each kind of credential may hold. Values are checked before any upstream request is
# built: one an upstream cannot carry (a header takes no control characters or non-ASCII, a
# host name takes one DNS label) is the user's to fix, so it is a 401 and never reaches httpx.
CredentialKind = Literal["token", "label"]
_CREDENTIALS: dict[CredentialKind, tuple[re.Pattern[str], str]] = {
    # Bearer tokens, API keys, passwords: visible ASCII, as an HTTP header carries it.
    "token": (re.compile(r"[\x21-\x7e]{1,4096}"), "1 to 4096 visible ASCII characters"),
    # An account's sub-domain: a single DNS label, so it cannot change the host.
    "label": (
        re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII),
        "a host name label (letters, digits and inner hyphens, at most 63)",
    ),
}


def credential_ok(value: str, kind: CredentialKind = "token") -> bool:
    """Whether `value` (already stripped) is a well-formed credential of `kind`."""
    return _CREDENTIALS[kind][0].fullmatch(value) is not None


def auth_value(auth: Auth, key: str, kind: CredentialKind = "token") -> str:
    """A credential field as a well-formed string of `kind`, else 401 (Talkdesk re-asks the
    user). Messages name the field, never the value."""
    value = auth.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Unauthorized(f"auth.{key} is missing or not a non-empty string")
    value = value.strip()
    if not credential_ok(value, kind):
        raise Unauthorized(f"auth.{key} must be {_CREDENTIALS[kind][1]}")
    return value


def auth_choice(auth: Auth, key: str, choices: Sequence[str], *, default: str) -> str:
    """An optional credential field from a fixed list (any case; absent or empty: `default`),
    else 401 naming the field."""
    value = auth.get(key)
    if value is None or value == "":
        return default
    # isascii first: a few non-ASCII letters lower-case to ASCII ones (the Kelvin sign to "k").
    if isinstance(value, str) and value.isascii() and value.lower() in choices:
        return value.lower()
    raise Unauthorized(f"auth.{key} must be one of: " + ", ".join(choices))

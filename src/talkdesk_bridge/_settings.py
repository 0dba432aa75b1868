"""The one settings object. Every field is read from `TALKDESK_BRIDGE_<FIELD>`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_SQL_URL", "Settings"]

DEFAULT_SQL_URL = "sqlite:///./talkdesk-bridge-demo.db"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TALKDESK_BRIDGE_", extra="ignore", validate_default=True
    )

    # Service
    public_url: str | None = Field(
        default=None, description="Base URL Talkdesk reaches the bridge at (else the request's)."
    )
    connectors: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Connectors to enable (comma-separated); default: all usable."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    default_region: str = Field(default="US", min_length=2, max_length=2)
    log_level: str = "INFO"
    inbound_secret: SecretStr | None = Field(
        default=None,
        description="When set, every call must carry it as the query parameter `key`.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Shares upstream rate-limit budgets across workers and instances.",
    )
    logo_urls: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"connector": "https://..."}: logos to announce instead of the bundled.',
    )
    icon_urls: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"connector": "https://..."}: icons to announce instead of the bundled.',
    )

    # Operator console (/console): off unless a token is set.
    console_token: SecretStr | None = Field(
        default=None,
        description="Enables /console; operators log in with it (at least 16 characters).",
    )
    console_session_minutes: int = Field(
        default=480, ge=1, le=7 * 24 * 60, description="How long a console login lasts."
    )
    console_sample_seconds: float = Field(
        default=5.0, ge=0.1, le=300, description="How often the health page samples the metrics."
    )

    @field_validator("console_token")
    @classmethod
    def _console_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        # An administration surface on an internet-facing service: no guessable passwords.
        if len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters")
        return SecretStr(value.get_secret_value().strip())

    # SQL connector
    sql_url: str = DEFAULT_SQL_URL
    sql_mapping: Path | None = Field(
        default=None, description="Mapping file (TOML); default: the bundled demo mapping."
    )
    sql_api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    sql_page_size: int = Field(default=500, ge=1, le=10_000)
    sql_lag_seconds: float = Field(
        default=300.0, ge=0, description="How late a row may commit behind its updated_at."
    )
    sql_read_ahead: bool = Field(
        default=False,
        description="Read the next contact page while Talkdesk takes this one (no gain measured "
        "on SQLite: mapping rows is CPU work that does not overlap).",
    )
    sql_interactions_limit: int = Field(default=20, ge=1, le=500)
    sql_agents_page_size: int = Field(default=100, ge=1, le=10_000)

    # Intercom connector
    intercom_base_url: str | None = Field(
        default=None,
        description="Replaces the regional API hosts (every region), e.g. a test double's URL.",
    )
    intercom_version: str = Field(default="2.14", pattern=r"^\d+\.\d+$|^Unstable$")
    intercom_auth_type: Literal["custom", "oauth2"] = Field(
        default="custom", description="How Talkdesk obtains the access token."
    )
    intercom_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one upstream call."
    )
    intercom_retry_attempts: int = Field(default=4, ge=1, le=10)
    intercom_max_connections: int = Field(
        default=64, ge=1, le=1000, description="Pooled connections to Intercom per process."
    )
    intercom_sync_page_size: int = Field(
        default=300, ge=1, le=5000, description="Contacts per Talkdesk page (upstream pages join)."
    )
    intercom_search_page_size: int = Field(default=150, ge=1, le=150)
    intercom_safety_window_seconds: float = Field(
        default=900.0,
        ge=0,
        description="How far each run's checkpoint trails its start: covers search lag and skew.",
    )
    intercom_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    intercom_prefetch_pages: int = Field(
        default=12, ge=0, le=32, description="Upstream pages read ahead per cursor (0: off)."
    )
    intercom_sync_chains: int = Field(
        default=4, ge=1, le=8, description="Cursors a large sync reads at once (1: one)."
    )
    intercom_interactions_limit: int = Field(default=20, ge=1, le=150)
    intercom_interactions_budget_seconds: float = Field(default=2.0, gt=0, le=60)
    intercom_request_budget_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time budget of auth validation, actions, agents."
    )
    intercom_cache_seconds: float = Field(
        default=3600.0, ge=0, description="How long /me, ticket types and company names are kept."
    )
    intercom_company_names: bool = Field(
        default=True, description="Resolve contacts' company names from a per-account directory."
    )

    # Google Contacts connector
    google_base_url: str | None = Field(
        default=None, description="Replaces https://people.googleapis.com (e.g. a test double)."
    )
    google_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    google_retry_attempts: int = Field(default=4, ge=1, le=10)
    google_max_connections: int = Field(default=32, ge=1, le=1000)
    google_sync_page_size: int = Field(
        default=1000, ge=1, le=10_000, description="Contacts per Talkdesk page (pages join)."
    )
    google_list_page_size: int = Field(default=1000, ge=1, le=1000)
    google_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    google_read_ahead: bool = Field(
        default=True, description="Read a sync's next page while Talkdesk takes this one."
    )
    google_request_budget_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time budget of auth validation and actions."
    )
    google_create_contact: bool = Field(
        default=True, description="Offer the create_contact action (needs the `contacts` scope)."
    )

    @field_validator("google_base_url")
    @classmethod
    def _google_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    # Zendesk connector
    zendesk_base_url: str | None = Field(
        default=None,
        description="Replaces https://{subdomain}.zendesk.com for every account (test doubles).",
    )
    zendesk_auth_type: Literal["oauth2", "api_token"] = Field(
        default="oauth2",
        description="oauth2, or api_token (deprecated: Zendesk retires API tokens 2027-04-30).",
    )
    zendesk_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    zendesk_retry_attempts: int = Field(default=4, ge=1, le=10)
    zendesk_max_connections: int = Field(default=64, ge=1, le=1000)
    zendesk_export_page_size: int = Field(
        default=1000, ge=1, le=1000, description="Users per incremental-export call."
    )
    zendesk_sync_page_size: int = Field(default=1000, ge=1, le=5000)
    zendesk_safety_window_seconds: float = Field(
        default=900.0,
        ge=60,
        description="How far checkpoints trail a run's start: covers writes that reach the "
        "export late.",
    )
    zendesk_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    zendesk_read_ahead: bool = Field(
        default=True, description="Read a sync's next export page while Talkdesk takes this one."
    )
    zendesk_interactions_limit: int = Field(default=20, ge=1, le=100)
    zendesk_interactions_budget_seconds: float = Field(default=3.0, gt=0, le=60)
    zendesk_request_budget_seconds: float = Field(default=10.0, gt=0, le=120)
    zendesk_cache_seconds: float = Field(default=3600.0, ge=0)
    zendesk_title_field: str | None = Field(
        default=None, max_length=100, description="User field key holding the contact's title."
    )
    zendesk_address_field: str | None = Field(
        default=None, max_length=100, description="User field key holding the contact's address."
    )

    @field_validator("zendesk_base_url")
    @classmethod
    def _zendesk_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    # Salesforce connector
    salesforce_base_url: str | None = Field(
        default=None,
        description="Replaces the login host and every instance URL (a test double's URL).",
    )
    salesforce_login_url: str = Field(
        default="https://login.salesforce.com",
        description="Where userinfo resolves a token's instance (test.salesforce.com: sandboxes).",
    )
    salesforce_api_version: str = Field(default="v62.0", pattern=r"^v[0-9]{2}\.0$")
    salesforce_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    salesforce_retry_attempts: int = Field(default=4, ge=1, le=10)
    salesforce_max_connections: int = Field(default=64, ge=1, le=1000)
    salesforce_sync_page_size: int = Field(
        default=2000, ge=200, le=2000, description="Contacts per Talkdesk page (one SOQL query)."
    )
    salesforce_lag_seconds: float = Field(
        default=300.0, ge=0, description="How far each run re-reads behind the previous one."
    )
    salesforce_company_refresh_hours: float = Field(
        default=24.0, ge=0, description="Full re-read period that refreshes company names (0: off)."
    )
    salesforce_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    salesforce_read_ahead: bool = Field(default=True)
    salesforce_interactions_limit: int = Field(default=20, ge=1, le=200)
    salesforce_interactions_budget_seconds: float = Field(default=3.0, gt=0, le=60)
    salesforce_request_budget_seconds: float = Field(default=10.0, gt=0, le=120)
    salesforce_agents_page_size: int = Field(default=500, ge=1, le=2000)
    salesforce_instance_cache_seconds: float = Field(
        default=300.0, ge=0, description="How long a token's resolved instance URL is kept."
    )

    # HubSpot connector
    hubspot_base_url: str | None = Field(
        default=None, description="Replaces https://api.hubapi.com (e.g. a test double)."
    )
    hubspot_auth_type: Literal["custom", "oauth2"] = Field(
        default="custom", description="A private app's access token, or Talkdesk's OAuth flow."
    )
    hubspot_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    hubspot_retry_attempts: int = Field(default=4, ge=1, le=10)
    hubspot_max_connections: int = Field(default=64, ge=1, le=1000)
    hubspot_sync_page_size: int = Field(
        default=1000, ge=1, le=10_000, description="Contacts per Talkdesk page (pages join)."
    )
    hubspot_lag_seconds: float = Field(
        default=900.0, ge=0, description="How far each run re-reads behind the previous one."
    )
    hubspot_search_per_second: float = Field(
        default=4.0, gt=0, le=5, description="Searches per second per account (HubSpot: 5)."
    )
    hubspot_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    hubspot_interactions_limit: int = Field(default=20, ge=1, le=100)
    hubspot_interactions_budget_seconds: float = Field(default=3.0, gt=0, le=60)
    hubspot_request_budget_seconds: float = Field(default=10.0, gt=0, le=120)
    hubspot_cache_seconds: float = Field(
        default=3600.0, ge=0, description="How long account info and ticket pipelines are kept."
    )

    @field_validator("hubspot_base_url")
    @classmethod
    def _hubspot_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    # Highrise connector
    highrise_base_url: str | None = Field(
        default=None,
        description="Replaces https://{account}.highrisehq.com for every account (test doubles).",
    )
    highrise_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    highrise_retry_attempts: int = Field(default=4, ge=1, le=10)
    highrise_max_connections: int = Field(default=32, ge=1, le=1000)
    highrise_sync_page_size: int = Field(
        default=1000, ge=1, le=10_000, description="Contacts per Talkdesk page (listings join)."
    )
    highrise_lag_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How far each run re-reads behind the previous one (late writes, skew).",
    )
    highrise_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    highrise_interactions_limit: int = Field(default=20, ge=1, le=100)
    highrise_interactions_budget_seconds: float = Field(default=3.0, gt=0, le=60)
    highrise_request_budget_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time budget of auth validation, actions, agents."
    )

    @field_validator("highrise_base_url")
    @classmethod
    def _highrise_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    # REST connector (a company's own API, described by a mapping file)
    rest_mapping: Path | None = Field(
        default=None,
        description="The TOML mapping file describing the API (default: the bundled example).",
    )
    rest_base_url: str | None = Field(
        default=None,
        description="Replaces the mapping's api.base_url (a staging host, a test double).",
    )
    rest_sync_page_size: int = Field(
        default=1000, ge=1, le=10_000, description="Contacts per Talkdesk page (listings join)."
    )
    rest_sync_budget_seconds: float = Field(default=20.0, gt=0, le=300)
    rest_read_ahead: bool = Field(
        default=True, description="Read the next contact page while Talkdesk handles this one."
    )
    rest_interactions_limit: int = Field(default=20, ge=1, le=200)
    rest_interactions_budget_seconds: float = Field(default=3.0, gt=0, le=60)
    rest_request_budget_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time budget of auth validation, actions, agents."
    )

    @field_validator("rest_base_url")
    @classmethod
    def _rest_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("connectors", "sql_api_tokens", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("intercom_base_url", "salesforce_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("logo_urls", "icon_urls")
    @classmethod
    def _image_urls(cls, value: dict[str, str]) -> dict[str, str]:
        # Talkdesk's UI loads them in a browser: absolute URLs it can fetch as they are.
        for name, url in value.items():
            if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
                raise ValueError(f"{name}: must be an absolute http(s) URL")
        return value

    @field_validator("default_region")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

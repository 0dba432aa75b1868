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

    @field_validator("connectors", "sql_api_tokens", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("intercom_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("default_region")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

"""The one settings object. Every field is read from `TALKDESK_BRIDGE_<FIELD>`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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

    @field_validator("connectors", "sql_api_tokens", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("default_region")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

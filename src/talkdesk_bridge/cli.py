"""The `talkdesk-bridge` command."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from ._errors import ConfigurationError
from ._sandbox_demo import check_command
from ._settings import Settings
from .checker import register as register_checker

__all__ = ["app", "main"]

app = typer.Typer(
    help="A bridge between Talkdesk's Integrations API and the systems that hold customer data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on.")]


class AuthKind(StrEnum):
    """`configuration --auth`: how Talkdesk obtains the credential."""

    custom = "custom"
    oauth2 = "oauth2"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError names the variable
        raise _fail(f"invalid settings: {exc}") from None


def _run(
    host: str,
    port: int,
    workers: int,
    certfile: Path | None,
    keyfile: Path | None,
    log_level: str,
) -> None:
    import uvicorn

    # Fail here, with a message, rather than inside a worker's lifespan.
    from ._app import build_connectors
    from ._observability import log_config

    try:
        build_connectors(_settings())
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers write their metrics to files that /metrics (in any worker) adds up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="talkdesk-bridge-")
    uvicorn.run(
        "talkdesk_bridge._app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        log_level=log_level.lower(),
        log_config=log_config(log_level),
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    ssl_certfile: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="TLS certificate (PEM).")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="TLS private key (PEM).")
    ] = None,
) -> None:
    """Serve the bridge for every enabled connector (settings from TALKDESK_BRIDGE_* variables)."""
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise _fail("--ssl-certfile and --ssl-keyfile go together")
    _run(host, port, workers, ssl_certfile, ssl_keyfile, _settings().log_level)


@app.command()
def configuration(
    name: Annotated[str, typer.Argument(help="Connector name, e.g. sql.")],
    public_url: Annotated[
        str | None,
        typer.Option(help="Base URL Talkdesk will call (default: TALKDESK_BRIDGE_PUBLIC_URL)."),
    ] = None,
    auth: Annotated[
        AuthKind | None,
        typer.Option(
            "--auth",
            help="Authentication type, for connectors that offer a choice (intercom).",
        ),
    ] = None,
) -> None:
    """Print the integration-configuration JSON to submit to Talkdesk."""
    from ._app import build_connectors, key_query
    from ._configuration import build_configuration

    settings = _settings().model_copy(update={"connectors": [name]})
    if auth is not None:
        # A connector offers the choice through a `<name>_auth_type` setting.
        choice = f"{name}_auth_type"
        if choice not in Settings.model_fields:
            raise _fail(f"connector {name!r} has one authentication type; drop --auth")
        settings = settings.model_copy(update={choice: auth.value})
    base = public_url or settings.public_url
    if not base:
        raise _fail("give --public-url or set TALKDESK_BRIDGE_PUBLIC_URL (the bridge's https URL)")
    try:
        connector = build_connectors(settings, serving=False)[name]
        document = build_configuration(
            connector, base, query=key_query(settings), settings=settings
        )
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def _demo_token(settings: Settings) -> tuple[str, str]:
    """(what the banner says about the token, what its curl example sends).

    A token the demo makes is shown in full (nobody else knows it); one given in the
    environment is a secret, named by its variable and at most its last four characters.
    """
    variable = "TALKDESK_BRIDGE_SQL_API_TOKENS"
    if not settings.sql_api_tokens:
        token = secrets.token_urlsafe(24)
        os.environ[variable] = token  # for the server this process starts
        return token, token
    given = settings.sql_api_tokens[0].get_secret_value()
    # Four characters of a short token would give too much of it away.
    tail = f" (ends in ...{given[-4:]})" if len(given) >= 16 else ""
    return f"the first token in {variable}{tail}", f"<token from {variable}>"


def _console_token(settings: Settings) -> str:
    """What the banner says about the console token: one the demo makes (and enables the
    console with) in full; one from the environment by its variable only, as for API tokens."""
    variable = "TALKDESK_BRIDGE_CONSOLE_TOKEN"
    if settings.console_token is None:
        token = secrets.token_urlsafe(24)
        os.environ[variable] = token  # for the server this process starts
        return token
    given = settings.console_token.get_secret_value()
    tail = f" (ends in ...{given[-4:]})" if len(given) >= 16 else ""
    return f"the token in {variable}{tail}"


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    contacts: Annotated[
        int, typer.Option(min=1, help="Contacts to seed (the SQL demo: when its database is new).")
    ] = 1000,
    connector: Annotated[
        str,
        typer.Option(
            help="Connector to demonstrate: sql (the embedded database) or one with a vendor "
            "sandbox (intercom, zendesk, ...): the sandbox is started and the bridge aimed at it."
        ),
    ] = "sql",
    latency_ms: Annotated[
        int, typer.Option(min=0, max=10_000, help="Delay the sandbox adds to every call.")
    ] = 0,
) -> None:
    """Serve the bridge on demo data: the embedded CRM database, or a vendor sandbox."""
    console_token = _console_token(_settings())
    console = f"Console:       http://{host}:{port}/console   (token: {console_token})"
    if connector != "sql":
        from ._sandbox_demo import sandbox_demo

        try:
            with sandbox_demo(
                connector,
                host=host,
                port=port,
                contacts=contacts,
                latency=latency_ms / 1000,
                echo=typer.echo,
            ):
                typer.echo(console)
                sys.stdout.flush()
                _run(host, port, 1, None, None, _settings().log_level)
        except ConfigurationError as exc:
            raise _fail(str(exc)) from None
        return
    from sqlalchemy.ext.asyncio import create_async_engine

    from .connectors.sql.client import async_url
    from .connectors.sql.demo import demo_is_seeded, seed_demo

    settings = _settings()

    async def prepare() -> bool:
        engine = create_async_engine(async_url(settings.sql_url))
        try:
            if await demo_is_seeded(engine):
                return False
            await seed_demo(engine, contacts_count=contacts)
            return True
        finally:
            await engine.dispose()

    try:
        seeded = asyncio.run(prepare())
    except Exception as exc:  # a bad URL or an unreachable server: say so, briefly
        raise _fail(f"cannot prepare the demo database: {type(exc).__name__}: {exc}") from None
    shown, sent = _demo_token(settings)
    os.environ.setdefault("TALKDESK_BRIDGE_CONNECTORS", "sql")
    base = f"http://{host}:{port}"
    state = f"seeded with {contacts} contacts" if seeded else "existing"
    body = orjson.dumps({"auth": {"api_token": sent}, "meta": {}}).decode()
    typer.echo(
        f"Demo database: {settings.sql_url} ({state})\n"
        f"Bridge:        {base}/sql/   (configuration: {base}/sql/configuration)\n"
        f"API token:     {shown}\n"
        f"Try:           curl -s -X POST {base}/sql/contact_sync "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        f"Check it:      {check_command(f'{base}/sql', {'api_token': sent})}\n"
        f"{console}"
    )
    sys.stdout.flush()
    _run(host, port, 1, None, None, settings.log_level)


register_checker(app)


def main() -> None:
    app()

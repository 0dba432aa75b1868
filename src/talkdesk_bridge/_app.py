"""The ASGI application: routes per enabled connector, lifespan, error shaping.

Handlers only parse, dispatch to the connector and shape the answer; vendor logic lives in
`connectors/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ._configuration import build_configuration, serves_actions, supported_endpoints
from ._errors import (
    ActionFailed,
    BridgeError,
    ConfigurationError,
    MethodNotAllowed,
    NotFound,
    RequestError,
    UpstreamRejected,
    error_body,
)
from ._http import error_response, json_response, parse_body, read_json
from ._images import Image, bundled_images, image_response, image_urls
from ._models import (
    ActionRequest,
    AgentSyncRequest,
    AuthRequest,
    ContactSyncRequest,
    Interaction,
    InteractionRequest,
)
from ._observability import ObservabilityMiddleware, metrics_endpoint
from ._openapi import openapi_document
from ._security import OPEN_PATHS, InboundSecretMiddleware
from ._settings import Settings
from .connectors import (
    REGISTRY,
    Connector,
    ExecutesActions,
    RetrievesInteractions,
    SyncsAgents,
    SyncsContacts,
    ValidatesAuth,
    load_factory,
)

if TYPE_CHECKING:
    from .console import OperatorConsole

__all__ = ["build_connectors", "create_app", "key_query"]

log = logging.getLogger("talkdesk_bridge")

Handler = Callable[[Request], Awaitable[Response]]


def build_connectors(
    settings: Settings,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    *,
    serving: bool = True,
    skipped: dict[str, str] | None = None,
) -> dict[str, Connector]:
    """Connectors named in settings (all fail loudly), else every usable one (others skipped;
    `skipped`, when given, receives why, for the console's overview)."""
    explicit = settings.connectors is not None
    names = settings.connectors if settings.connectors is not None else list(REGISTRY)
    for variable, urls in (("LOGO_URLS", settings.logo_urls), ("ICON_URLS", settings.icon_urls)):
        if unknown := sorted(set(urls) - set(REGISTRY)):
            raise ConfigurationError(f"TALKDESK_BRIDGE_{variable}: unknown connector(s) {unknown}")
    built: dict[str, Connector] = {}
    for name in names:
        try:
            factory = load_factory(name)
            built[name] = factory(settings, transport=(transports or {}).get(name), serving=serving)
        except ConfigurationError as exc:
            if explicit:
                raise ConfigurationError(f"connector {name!r}: {exc}") from None
            log.warning("connector %s not enabled: %s", name, exc)
            if skipped is not None:
                skipped[name] = str(exc)
    if not built:
        raise ConfigurationError("no connector could be enabled")
    return built


def _guarded(handler: Handler) -> Handler:
    """Every failure becomes JSON; a bug is logged once and answered 500 without details."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BridgeError as exc:
            return error_response(exc)
        except Exception:
            log.exception("unhandled error on %s", request.url.path)
            return json_response(error_body("internal_error", "internal error"), 500)

    return endpoint


def _connector_routes(connector: Connector, settings: Settings) -> list[BaseRoute]:
    name = connector.info.name
    limit = settings.max_body_bytes
    routes: list[BaseRoute] = []

    def post(path: str, handler: Handler) -> None:
        routes.append(Route(f"/{name}/{path}", _guarded(handler), methods=["POST"]))

    served = supported_endpoints(connector)

    if "auth_validation" in served:
        assert isinstance(connector, ValidatesAuth)
        validator = connector

        async def auth_validation(request: Request) -> Response:
            req = parse_body(AuthRequest, await read_json(request, limit))
            return json_response(await validator.validate_auth(req.auth))

        post("auth_validation", auth_validation)

    if "contact_sync" in served:
        assert isinstance(connector, SyncsContacts)
        syncer = connector

        async def contact_sync(request: Request) -> Response:
            req = parse_body(ContactSyncRequest, await read_json(request, limit))
            page = await syncer.sync_contacts(req.auth, req.meta)
            return Response(page.model_dump_json(exclude_none=True), media_type="application/json")

        post("contact_sync", contact_sync)

    if "interaction_update" in served:
        assert isinstance(connector, RetrievesInteractions)
        retriever = connector
        known = connector.info.interaction_types

        async def interaction_update(request: Request) -> Response:
            req = parse_body(InteractionRequest, await read_json(request, limit))
            wanted = req.meta.interaction_types
            types = tuple(t for t in known if not wanted or t in wanted)
            found = await retriever.interactions(req.auth, types, req.data) if types else []
            return json_response([_dump(i) for i in found])

        post("interaction_update", interaction_update)

    if "agent_sync" in served:
        assert isinstance(connector, SyncsAgents)
        agents = connector

        async def agent_sync(request: Request) -> Response:
            req = parse_body(AgentSyncRequest, await read_json(request, limit))
            page = await agents.sync_agents(req.auth, req.meta.offset)
            return json_response(page.model_dump(exclude_none=True))

        post("agent_sync", agent_sync)

    if serves_actions(connector):
        assert isinstance(connector, ExecutesActions)
        executor = connector

        async def action(request: Request) -> Response:
            spec = connector.info.action(request.path_params["action"])
            if spec is None:
                raise NotFound(
                    f"connector {name!r} has no action {request.path_params['action']!r}"
                )
            req = parse_body(ActionRequest, await read_json(request, limit))
            try:
                result = await executor.run_action(spec, req.auth, req.meta, req.data)
            except UpstreamRejected as exc:
                # The contract's action failure is 400 with a message, whatever refused it.
                raise ActionFailed(exc.message) from None
            return json_response(result.model_dump(exclude_none=True), 201)

        post("actions/{action}", action)

    async def configuration(request: Request) -> Response:
        base = settings.public_url or str(request.base_url)
        document = build_configuration(
            connector, base, query=key_query(settings), settings=settings
        )
        return json_response(document)

    routes.append(Route(f"/{name}/configuration", _guarded(configuration), methods=["GET"]))

    image_urls(connector, "", settings)  # a connector without a logo or an icon cannot start
    for kind, image in bundled_images(connector).items():
        routes.append(Route(f"/{name}/{kind}", _image_endpoint(image), methods=["GET"]))
    return routes


def _image_endpoint(image: Image) -> Handler:
    async def endpoint(request: Request) -> Response:
        return image_response(image, request.headers.get("if-none-match"))

    return endpoint


def _image_paths(connectors: Mapping[str, Connector]) -> dict[str, tuple[str, str]]:
    return {
        f"/{name}/{kind}": (name, kind)
        for name, connector in connectors.items()
        for kind in bundled_images(connector)
    }


def key_query(settings: Settings) -> str:
    """The query string every configured endpoint URL carries (the inbound secret, if any)."""
    if settings.inbound_secret is None:
        return ""
    return urlencode({"key": settings.inbound_secret.get_secret_value()})


def _route_labels(connectors: Mapping[str, Connector]) -> dict[str, tuple[str, str]]:
    labels = {path: ("-", path.strip("/") or "index") for path in ("/", "/healthz", "/readyz")}
    labels["/metrics"] = ("-", "metrics")
    labels["/openapi.json"] = ("-", "openapi")
    for name, connector in connectors.items():
        for endpoint in [*supported_endpoints(connector), "configuration"]:
            labels[f"/{name}/{endpoint}"] = (name, endpoint)
        if serves_actions(connector):
            for spec in connector.info.actions:
                labels[f"/{name}/actions/{spec.name}"] = (name, f"actions/{spec.name}")
    return labels | _image_paths(connectors)


def _dump(interaction: Interaction) -> dict[str, Any]:
    return interaction.model_dump(exclude_none=True)


def create_app(
    settings: Settings | None = None,
    *,
    connectors: Mapping[str, Connector] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> Starlette:
    settings = settings or Settings()
    skipped: dict[str, str] = {}
    enabled = (
        dict(connectors)
        if connectors is not None
        else build_connectors(settings, transports, skipped=skipped)
    )
    console: OperatorConsole | None = None
    if settings.console_token is not None:
        # Imported only when enabled: templates and their engine cost start-up time otherwise.
        from .console import OperatorConsole

        console = OperatorConsole(settings, enabled, skipped)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Connector] = []
        try:
            for connector in enabled.values():
                await connector.start()
                started.append(connector)
            if console is not None:
                await console.start()
            # Start-up objects live as long as the process: keep them out of every later
            # collection (halves interaction p99 under load, see bench/).
            gc.freeze()
            yield
        finally:
            if console is not None:
                await console.close()
            for connector in reversed(started):
                await connector.close()

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        async def check(connector: Connector) -> str:
            try:
                await asyncio.wait_for(connector.ready(), timeout=5)
            except Exception as exc:  # any failure means "not ready"; say which kind
                return f"unavailable: {type(exc).__name__}"
            return "ok"

        results = await asyncio.gather(*(check(c) for c in enabled.values()))
        report = dict(zip(enabled, results, strict=True))
        ok = all(r == "ok" for r in report.values())
        return json_response(
            {"status": "ready" if ok else "unavailable", "connectors": report},
            200 if ok else 503,
        )

    description = openapi_document(enabled)

    async def openapi(request: Request) -> Response:
        return json_response(description)

    async def index(request: Request) -> Response:
        return json_response(
            {
                "service": "talkdesk-bridge",
                "connectors": {
                    name: supported_endpoints(c) + (["actions"] if serves_actions(c) else [])
                    for name, c in enabled.items()
                },
            }
        )

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    for connector in enabled.values():
        routes.extend(_connector_routes(connector, settings))
    if console is not None:
        routes.extend(console.routes())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error: RequestError
        if exc.status_code == 405:
            error = MethodNotAllowed(
                f"method {request.method} is not allowed on {request.url.path}"
            )
        elif exc.status_code == 404:
            error = NotFound(f"no such endpoint: {request.url.path}")
        else:
            error = RequestError(str(exc.detail))
            error.status = exc.status_code
        return error_response(error)

    console_prefixes = {console.path: ("-", "console")} if console is not None else {}
    middleware = [
        Middleware(
            ObservabilityMiddleware, routes=_route_labels(enabled), prefixes=console_prefixes
        )
    ]
    if settings.inbound_secret is not None:
        secret = settings.inbound_secret.get_secret_value()
        open_paths = OPEN_PATHS | frozenset(_image_paths(enabled))
        middleware.append(
            Middleware(
                InboundSecretMiddleware,
                secret=secret,
                open_paths=open_paths,
                # The console has its own login and a browser cannot carry `?key=` around.
                open_prefixes=tuple(console_prefixes),
            )
        )
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
    )
    # Talkdesk calls URLs exactly as configured; a redirect would be the one non-JSON answer.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.connectors = enabled
    app.state.started_at = time.time()
    return app

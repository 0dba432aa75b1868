"""The console's routes. Handlers parse, check the session and CSRF token, dispatch to the
probe, the checker or the health sampler, and render a template; they never keep, log or echo
a credential typed into a form."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from .._errors import PayloadTooLarge
from .._http import json_response
from .._images import bundled_images, image_response
from .._observability import recent_requests
from .._settings import Settings
from ..connectors import Connector
from ._health import HealthSampler
from ._jobs import Jobs, Progress, TooBusy
from ._overview import auth_inputs, describe, describe_disabled, features
from ._probe import InProcess, Masker, lookup_caller, try_connection
from ._session import COOKIE, LOGIN_COOKIE, LOGIN_SECONDS, LoginLimiter, Session, Sessions
from ._web import read_form, render, secure, static_file

__all__ = ["OperatorConsole"]

log = logging.getLogger("talkdesk_bridge.console")

PATH = "/console"
Handler = Callable[[Request], Awaitable[Response]]
SessionHandler = Callable[[Request, Session], Awaitable[Response]]
FormHandler = Callable[[Request, Session, dict[str, str]], Awaitable[Response]]


def _redirect(to: str) -> Response:
    return secure(RedirectResponse(to, status_code=303))


def _denied(status: int, message: str) -> Response:
    return secure(json_response({"error": {"code": "console", "message": message}}, status))


class OperatorConsole:
    """The console of one app: its sessions, jobs, health samples and routes."""

    path = PATH

    def __init__(
        self, settings: Settings, enabled: Mapping[str, Connector], skipped: Mapping[str, str]
    ) -> None:
        assert settings.console_token is not None
        self.settings = settings
        self.enabled = dict(enabled)
        self.skipped = dict(skipped)
        self.sessions = Sessions(
            settings.console_token.get_secret_value(), settings.console_session_minutes * 60
        )
        self.limiter = LoginLimiter()
        self.jobs = Jobs()
        self.health = HealthSampler(settings.console_sample_seconds)
        self._described: dict[str, Connector | None] | None = None

    async def start(self) -> None:
        await self.health.start()

    async def close(self) -> None:
        await self.jobs.close()
        await self.health.close()

    # Plumbing

    def _session(self, request: Request) -> Session | None:
        return self.sessions.verify(request.cookies.get(COOKIE))

    def _page(self, handler: SessionHandler) -> Handler:
        """A page: without a session, the login form."""

        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return _redirect(f"{PATH}/login")
            return await self._guard(handler, request, session)

        return endpoint

    def _data(self, handler: SessionHandler) -> Handler:
        """A fragment or JSON a script fetches: without a session, 401 and nothing else."""

        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return _denied(401, "log in to the console first")
            return await self._guard(handler, request, session)

        return endpoint

    def _post(
        self, handler: Callable[[Request, Session, dict[str, str]], Awaitable[Response]]
    ) -> Handler:
        """A state-changing request: a session and its CSRF token (form field or header)."""

        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return _denied(401, "log in to the console first")
            try:
                form = await read_form(request)
            except PayloadTooLarge as exc:
                return _denied(413, exc.message)
            given = form.get("csrf") or request.headers.get("x-csrf-token")
            if not self.sessions.csrf_ok(session, given):
                return _denied(403, "missing or wrong CSRF token: reload the page")

            async def run(request: Request, session: Session) -> Response:
                return await handler(request, session, form)

            return await self._guard(run, request, session)

        return endpoint

    async def _guard(self, handler: SessionHandler, request: Request, session: Session) -> Response:
        try:
            return await handler(request, session)
        except Exception:
            # A bug: the path only, never the form (it may hold credentials).
            log.exception("console error on %s", request.url.path)
            return render("error.html", 500, message="internal error", **self._context(session))

    def _context(self, session: Session | None, **extra: Any) -> dict[str, Any]:
        return {
            "csrf": self.sessions.csrf(session) if session else "",
            "logged_in": session is not None,
            "enabled": list(self.enabled),
            **extra,
        }

    def _where(self, request: Request) -> InProcess:
        secret = self.settings.inbound_secret
        app: ASGIApp = request.app
        return InProcess(app, str(request.base_url), secret.get_secret_value() if secret else None)

    def _connector(self, name: str | None) -> Connector | None:
        if name is None:
            return next(iter(self.enabled.values()), None)
        return self.enabled.get(name)

    def _credentials(self, connector: Connector, form: Mapping[str, str]) -> dict[str, str]:
        """The declared auth fields the user filled in; nothing else from the form."""
        values = {}
        for field in auth_inputs(connector):
            value = form.get(f"auth.{field.key}", "")
            if value != "":
                values[field.key] = value
        return values

    def _described_connectors(self) -> dict[str, Connector | None]:
        if self._described is None:
            from ..connectors import REGISTRY

            self._described = {
                name: describe_disabled(name, self.settings)
                for name in REGISTRY
                if name not in self.enabled
            }
        return self._described

    # Login

    async def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return _redirect(PATH)
        return self._login_page(request)

    def _login_page(
        self, request: Request, status: int = 200, message: str | None = None
    ) -> Response:
        nonce = self.sessions.login_nonce()
        response = render(
            "login.html",
            status,
            message=message,
            **self._context(None, csrf=self.sessions.login_csrf(nonce)),
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_SECONDS,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def login(self, request: Request) -> Response:
        if self.limiter.blocked():
            return self._login_page(request, 429, "too many failed logins: wait a minute")
        try:
            form = await read_form(request)
        except PayloadTooLarge:
            return self._login_page(request, 413, "that form is far too large")
        if not self.sessions.login_csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return self._login_page(request, 403, "the login form expired: try again")
        if not self.sessions.token_matches(form.get("token", "")):
            self.limiter.failed()
            log.warning("console login refused")
            return self._login_page(request, 401, "wrong console token")
        _, cookie = self.sessions.issue()
        response = _redirect(PATH)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=self.sessions.lifetime,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path=PATH)
        log.info("console login")
        return response

    async def logout(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        self.sessions.revoke(session)
        response = _redirect(f"{PATH}/login")
        response.delete_cookie(COOKIE, path=PATH)
        return response

    # Overview

    async def overview(self, request: Request, session: Session) -> Response:
        from .._app import key_query

        base = self.settings.public_url or str(request.base_url)
        cards = await describe(
            self.settings,
            self.enabled,
            self.skipped,
            self._described_connectors(),
            base,
            key_query(self.settings),
        )
        return render("overview.html", cards=cards, page="overview", **self._context(session))

    async def configuration(self, request: Request, session: Session) -> Response:
        from .._app import key_query
        from .._configuration import build_configuration

        name = request.path_params["name"]
        connector = self.enabled.get(name)
        if connector is None:
            return _denied(404, "no such enabled connector")
        base = self.settings.public_url or str(request.base_url)
        document = build_configuration(
            connector, base, query=key_query(self.settings), settings=self.settings
        )
        response = json_response(document)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{name}-configuration.json"'
        )
        return secure(response)

    async def logo(self, request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        connector = self.enabled.get(name) or self._described_connectors().get(name)
        image = bundled_images(connector).get("logo") if connector is not None else None
        if image is None:
            return _denied(404, "no such logo")
        return image_response(image, request.headers.get("if-none-match"))

    # Try a connection

    def _connector_page(
        self, template: str, request: Request, session: Session, name: str | None, **extra: Any
    ) -> Response:
        connector = self._connector(name)
        if connector is None:
            return render(
                "error.html",
                404,
                message="no such enabled connector",
                **self._context(session, page=template.removesuffix(".html")),
            )
        return render(
            template,
            connector=connector.info.name,
            display_name=connector.info.display_name,
            fields=auth_inputs(connector),
            features=features(connector),
            page=template.removesuffix(".html"),
            **self._context(session, **extra),
        )

    async def try_form(self, request: Request, session: Session) -> Response:
        name = request.query_params.get("connector")
        return self._connector_page("try.html", request, session, name, result=None)

    async def try_run(self, request: Request, session: Session, form: dict[str, str]) -> Response:
        connector = self._connector(form.get("connector", ""))
        if connector is None:
            return self._connector_page("try.html", request, session, "", result=None)
        credentials = self._credentials(connector, form)
        mask = Masker(list(credentials.values()))
        started = time.perf_counter()
        result = await try_connection(
            self._where(request),
            connector.info.name,
            credentials,
            features(connector),
            connector.info.interaction_types,
            mask,
        )
        return self._connector_page(
            "try.html",
            request,
            session,
            connector.info.name,
            result=result,
            total_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    # The full check

    async def check_start(
        self, request: Request, session: Session, form: dict[str, str]
    ) -> Response:
        from ..checker import CheckOptions, run_check

        connector = self._connector(form.get("connector", ""))
        if connector is None:
            return _denied(404, "no such enabled connector")
        credentials = self._credentials(connector, form)
        where = self._where(request)
        url = f"{where.base_url}/{connector.info.name}"

        async def run(progress: Progress) -> dict[str, Any]:
            # The credentials live in this closure while the check runs, nowhere else.
            options = CheckOptions(url=url, auth=credentials, contacts_sample=5, timeout=60)
            report = await run_check(options, transport=where.transport(), progress=progress)
            return report.to_dict()

        try:
            job = self.jobs.start(session.id, connector.info.name, run)
        except TooBusy:
            return _denied(429, "checks are already running: wait for one to finish")
        return secure(json_response({"job": job.id, "status": f"{PATH}/check/{job.id}"}, 202))

    async def check_status(self, request: Request, session: Session) -> Response:
        job = self.jobs.get(request.path_params["job"], session.id)
        if job is None:
            return _denied(404, "no such check (it may run on another worker, or be forgotten)")
        body: dict[str, Any] = {
            "state": job.state,
            "connector": job.connector,
            "elapsed": job.elapsed(),
            "current": job.progress.current,
            "steps": list(job.progress.steps.values()),
            "error": job.error,
        }
        if job.report is not None:
            body["html"] = bytes(render("_report.html", report=job.report).body).decode()
        return secure(json_response(body))

    # Caller lookup

    async def lookup_form(self, request: Request, session: Session) -> Response:
        name = request.query_params.get("connector")
        return self._connector_page("lookup.html", request, session, name, result=None, caller="")

    async def lookup_run(
        self, request: Request, session: Session, form: dict[str, str]
    ) -> Response:
        connector = self._connector(form.get("connector", ""))
        if connector is None:
            return self._connector_page("lookup.html", request, session, "", result=None, caller="")
        caller = form.get("caller", "")[:320]
        credentials = self._credentials(connector, form)
        mask = Masker(list(credentials.values()))
        result = None
        if caller.strip():
            result = await lookup_caller(
                self._where(request),
                connector.info.name,
                credentials,
                caller,
                self.settings.default_region,
                features(connector),
                connector.info.interaction_types,
                mask,
            )
        return self._connector_page(
            "lookup.html", request, session, connector.info.name, result=result, caller=mask(caller)
        )

    # Health

    def _health_context(self) -> dict[str, Any]:
        now = time.time()
        return {
            "health": self.health.view(),
            "recent": [(round(now - r.at, 1), r) for r in recent_requests()[:30]],
        }

    async def health_page(self, request: Request, session: Session) -> Response:
        return render(
            "health.html", page="health", **self._health_context(), **self._context(session)
        )

    async def health_live(self, request: Request, session: Session) -> Response:
        return render("_health_live.html", **self._health_context())

    async def static(self, request: Request) -> Response:
        response = static_file(request.path_params["name"])
        return response or _denied(404, "no such file")

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PATH, self._page(self.overview), methods=["GET"]),
            Route(f"{PATH}/login", self.login_form, methods=["GET"]),
            Route(f"{PATH}/login", self.login, methods=["POST"]),
            Route(f"{PATH}/logout", self._post(self.logout), methods=["POST"]),
            Route(f"{PATH}/static/{{name}}", self.static, methods=["GET"]),
            Route(f"{PATH}/logos/{{name}}", self._data(self.logo), methods=["GET"]),
            Route(
                f"{PATH}/configuration/{{name}}", self._data(self.configuration), methods=["GET"]
            ),
            Route(f"{PATH}/try", self._page(self.try_form), methods=["GET"]),
            Route(f"{PATH}/try", self._post(self.try_run), methods=["POST"]),
            Route(f"{PATH}/check", self._post(self.check_start), methods=["POST"]),
            Route(f"{PATH}/check/{{job}}", self._data(self.check_status), methods=["GET"]),
            Route(f"{PATH}/lookup", self._page(self.lookup_form), methods=["GET"]),
            Route(f"{PATH}/lookup", self._post(self.lookup_run), methods=["POST"]),
            Route(f"{PATH}/health", self._page(self.health_page), methods=["GET"]),
            Route(f"{PATH}/health/live", self._data(self.health_live), methods=["GET"]),
        ]

"""Console logins: the operator's token exchanged for a signed, expiring session cookie.

Cookies are stateless (HMAC-signed with a key derived from the console token), so a login made
on one worker or instance is valid on every other one, and changing the token logs everybody
out. Each session has a random id; its CSRF token is an HMAC of that id, so a form or a script
of another origin cannot forge one. The login form has its own CSRF token, tied to a short-lived
pre-login cookie (no login CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["COOKIE", "LOGIN_COOKIE", "LoginLimiter", "Session", "Sessions"]

COOKIE = "td_console"
LOGIN_COOKIE = "td_console_login"
LOGIN_SECONDS = 600  # how long a login form stays usable
_VERSION = "v1"


def _same(given: str, expected: str) -> bool:
    """Constant-time equality; as bytes, since `compare_digest` refuses non-ASCII text (a
    hostile cookie or form field would otherwise be a 500)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    expires: int  # epoch seconds


class Sessions:
    def __init__(self, token: str, lifetime_seconds: int) -> None:
        # Hashed, so comparing a guess takes the same time whatever its length.
        self._token_digest = hashlib.sha256(token.encode()).digest()
        self._key = hmac.new(token.encode(), b"talkdesk-bridge console v1", "sha256").digest()
        self.lifetime = lifetime_seconds
        # Logged-out sessions, until they would have expired anyway (per process, bounded).
        self._revoked: dict[str, int] = {}

    def _sign(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}.{value}".encode(), "sha256").digest())

    def token_matches(self, given: str) -> bool:
        digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(digest, self._token_digest)

    # Sessions

    def issue(self, now: float | None = None) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session = Session(secrets.token_urlsafe(18), int(now or time.time()) + self.lifetime)
        payload = f"{_VERSION}.{session.expires}.{session.id}"
        return session, f"{payload}.{self._sign('session', payload)}"

    def verify(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        # isascii: "²".isdigit() holds, and int() refuses it.
        if (
            len(parts) != 4
            or parts[0] != _VERSION
            or not (parts[1].isascii() and parts[1].isdigit())
        ):
            return None
        payload = ".".join(parts[:3])
        if not _same(parts[3], self._sign("session", payload)):
            return None
        session = Session(parts[2], int(parts[1]))
        if session.expires <= (now or time.time()) or session.id in self._revoked:
            return None
        return session

    def revoke(self, session: Session) -> None:
        now = time.time()
        self._revoked = {k: v for k, v in self._revoked.items() if v > now}
        if len(self._revoked) < 10_000:
            self._revoked[session.id] = session.expires

    def csrf(self, session: Session) -> str:
        return self._sign("csrf", session.id)

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and _same(str(given), self.csrf(session))

    # The login form

    def login_nonce(self) -> str:
        return f"{int(time.time()) + LOGIN_SECONDS}-{secrets.token_urlsafe(12)}"

    def login_csrf(self, nonce: str) -> str:
        return self._sign("login", nonce)

    def login_csrf_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given or len(nonce) > 100:
            return False
        expires, _, _ = nonce.partition("-")
        if not (expires.isascii() and expires.isdigit()) or int(expires) <= time.time():
            return False
        return _same(given, self.login_csrf(nonce))


class LoginLimiter:
    """At most `limit` failed logins per `window` seconds (per process): guessing the token
    through the form is as slow as it can be made without locking the operator out for long."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._failures and self._failures[0] <= now - self.window:
            self._failures.popleft()

    def blocked(self) -> bool:
        now = time.monotonic()
        self._trim(now)
        return len(self._failures) >= self.limit

    def failed(self) -> None:
        self._failures.append(time.monotonic())

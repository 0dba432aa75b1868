"""Which hosts may receive a Salesforce token: the `instance_url` SSRF rule.

`instance_url` comes from Talkdesk's stored auth (or from userinfo) and becomes the host of every
call, carrying the token. It must be `https`, port 443, no user info, no IP literal, an empty
path, and its lower-cased host must end with a Salesforce suffix as a whole dot-separated label
sequence (`x.my.salesforce.com`), never a substring (`evilsalesforce.com`).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

__all__ = ["ALLOWED_SUFFIXES", "lightning_host", "valid_instance_url"]

ALLOWED_SUFFIXES = (".salesforce.com", ".force.com", ".cloudforce.com", ".salesforce.mil")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_MAX_URL = 300


def valid_instance_url(value: object, *, fixed: str | None = None) -> str | None:
    """The canonical `https://host` of an acceptable instance URL, else None.

    With `fixed` (the configured base URL of a test double), only that exact URL is accepted.
    """
    if not isinstance(value, str) or not value or len(value) > _MAX_URL:
        return None
    text = value.strip().rstrip("/")
    if fixed is not None:
        return fixed if text == fixed else None
    if not text.isascii() or any(c.isspace() or ord(c) < 0x21 for c in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if (
        parts.scheme.lower() != "https"
        or parts.username is not None
        or parts.password is not None
        or "@" in parts.netloc
        or port not in (None, 443)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or not host
    ):
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return None
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if not any(host.endswith(suffix) and len(host) > len(suffix) for suffix in ALLOWED_SUFFIXES):
        return None
    return f"https://{host}"


def lightning_host(instance_url: str) -> str:
    """The Lightning UI origin of an instance (`acme.my.salesforce.com` ->
    `acme.lightning.force.com`); the instance itself when it has no My Domain name."""
    host = urlsplit(instance_url).hostname or ""
    for api, ui in ((".my.salesforce.com", ".lightning.force.com"),):
        if host.endswith(api):
            return f"https://{host[: -len(api)]}{ui}"
    return instance_url

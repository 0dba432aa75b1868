"""Each connector's logo and icon: Talkdesk's configuration requires `logo_url` and `icon_url`.

A connector ships `logo.svg` and `icon.svg` (or `.png`) in its own package; they are found
through the package of the connector's class, so a new connector adds two files and nothing
else. The bridge serves them at `/NAME/logo` and `/NAME/icon`, open to anyone (Talkdesk's UI
loads them in a browser, without the inbound secret). An operator may announce other URLs.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass
from importlib import resources

from starlette.responses import Response

from ._errors import ConfigurationError
from ._settings import Settings
from .connectors import Connector

__all__ = ["IMAGE_KINDS", "Image", "bundled_images", "image_response", "image_urls"]

IMAGE_KINDS = ("logo", "icon")
_MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
# A day in any cache; the ETag makes the daily revalidation a 304.
_CACHE_CONTROL = "public, max-age=86400"
# An SVG is a document that could run script; ours do not, and this says none may.
_SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@dataclass(frozen=True, slots=True)
class Image:
    content: bytes
    media_type: str
    etag: str  # quoted, as the header carries it


@functools.cache
def _package_images(package: str) -> dict[str, Image]:
    root = resources.files(package)
    found: dict[str, Image] = {}
    for kind in IMAGE_KINDS:
        for suffix, media_type in _MEDIA_TYPES.items():
            resource = root / f"{kind}.{suffix}"
            if resource.is_file():
                content = resource.read_bytes()
                etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
                found[kind] = Image(content, media_type, etag)
                break
    return found


def bundled_images(connector: Connector) -> dict[str, Image]:
    """kind -> the image file in the package that defines the connector's class."""
    module = sys.modules[type(connector).__module__]
    return _package_images(module.__package__ or module.__name__)


def image_urls(connector: Connector, root: str, settings: Settings | None = None) -> dict[str, str]:
    """kind -> URL for the configuration: the operator's setting, else the connector's own
    (the SQL mapping file's), else its bundled file as served under `root` (`BASE/NAME`).

    Raises `ConfigurationError` when a connector has neither: the field is mandatory.
    """
    info = connector.info
    configured: dict[str, dict[str, str]] = {
        "logo": settings.logo_urls if settings else {},
        "icon": settings.icon_urls if settings else {},
    }
    own = {"logo": info.logo_url, "icon": info.icon_url}
    bundled = bundled_images(connector)
    urls: dict[str, str] = {}
    for kind in IMAGE_KINDS:
        url = configured[kind].get(info.name) or own[kind]
        if url is None and kind in bundled:
            url = f"{root}/{kind}"
        if url is None:
            raise ConfigurationError(
                f"connector {info.name!r} has no {kind}: ship {kind}.svg in its package or set "
                f"TALKDESK_BRIDGE_{kind.upper()}_URLS"
            )
        urls[kind] = url
    return urls


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def image_response(image: Image, if_none_match: str | None) -> Response:
    """200 with the image, or 304 when the client's copy is current."""
    headers = {
        "Cache-Control": _CACHE_CONTROL,
        "ETag": image.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if image.media_type == "image/svg+xml":
        headers["Content-Security-Policy"] = _SVG_POLICY
    if _matches(if_none_match, image.etag):
        return Response(status_code=304, headers=headers)
    return Response(image.content, headers=headers, media_type=image.media_type)

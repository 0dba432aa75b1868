"""The operator console at /console: connectors, trying a connection, caller lookup, health.

Off unless `TALKDESK_BRIDGE_CONSOLE_TOKEN` is set (then `create_app` routes it). Pages are
rendered on the server from autoescaped Jinja2 templates; the little JavaScript there is comes
from `static/` (the Content-Security-Policy allows no other script).
"""

from __future__ import annotations

from ._routes import OperatorConsole

__all__ = ["OperatorConsole"]

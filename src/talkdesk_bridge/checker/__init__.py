"""`talkdesk-bridge check`: a Talkdesk simulator that judges any bridge against the contract.

Importing this package stays cheap (the CLI imports it for `--help`): the runner and the
report, which pull in httpx and rich, load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._cli import register

if TYPE_CHECKING:
    from ._report import CheckReport
    from ._runner import CheckOptions, run_check

__all__ = ["CheckOptions", "CheckReport", "register", "run_check"]


def __getattr__(name: str) -> object:
    if name == "CheckReport":
        from ._report import CheckReport

        return CheckReport
    if name in ("CheckOptions", "run_check"):
        from . import _runner

        return getattr(_runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""``python -m talkdesk_sandbox VENDOR``: seed a vendor sandbox and serve it until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from ._registry import SANDBOXES, load_sandbox

__all__ = ["main"]

_EPILOG = """\
Prints the base URL, the credentials (the connector's `auth` object) and the bridge's
environment variables, then serves until Ctrl-C or SIGTERM. Example:

  python -m talkdesk_sandbox intercom --port 8765 --contacts 1000 --token my-token
"""


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)  # numbers, true/false, null, lists
    except ValueError:
        value = raw
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m talkdesk_sandbox",
        description="Serve a seeded fake of a vendor API for a bridge connector.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("vendor", choices=sorted(SANDBOXES), help="the connector's name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--token", help="the credential the sandbox accepts")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every call")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same data")
    parser.add_argument("--rate-limit", type=int, help="calls per the vendor's window")
    parser.add_argument("--lag", type=float, help="seconds before writes reach search")
    parser.add_argument(
        "-o",
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a vendor option (e.g. timezone=UTC); VALUE is JSON when it parses",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line instead")
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options: dict[str, Any] = dict(args.option)
    options["latency"] = args.latency_ms / 1000
    for name in ("token", "rate_limit", "lag"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    try:
        sandbox = load_sandbox(args.vendor, **options)
    except TypeError as exc:  # an option the vendor does not take
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Both stop it, even when started in the background (where SIGINT may be ignored).
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        started = time.perf_counter()
        sandbox.seed(contacts=args.contacts, seed=args.seed)
        seeded = time.perf_counter() - started
        with sandbox.serve(args.host, args.port) as base_url:
            credentials = sandbox.credentials()
            env = sandbox.bridge_env(base_url)
            if args.json:
                line = {"vendor": args.vendor, "base_url": base_url, "auth": credentials}
                print(json.dumps({**line, "env": env}), flush=True)
            else:
                print(
                    f"{args.vendor} sandbox on {base_url} with {args.contacts} contacts "
                    f"(seed {args.seed}, seeded in {seeded:.1f} s)\n"
                    f"base URL:    {base_url}\n"
                    f"credentials: {json.dumps(credentials)}\n"
                    "bridge env:  " + " ".join(f"{k}={v}" for k, v in env.items()) + "\n"
                    "Ctrl-C stops it.",
                    flush=True,
                )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 0

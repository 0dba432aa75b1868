"""`python -m bench [sql|intercom|hardening]`: prints the figures quoted in the README."""

from __future__ import annotations

import argparse

from bench import google, hardening, highrise, hubspot, intercom, rest, salesforce, sql, zendesk


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "suite",
        nargs="?",
        default="sql",
        choices=[
            "sql",
            "intercom",
            "hardening",
            "google",
            "zendesk",
            "salesforce",
            "hubspot",
            "highrise",
            "rest",
        ],
    )
    parser.add_argument("--contacts", type=int, help="default: 100,000 (sql), 50,000 (intercom)")
    parser.add_argument("--requests", type=int, help="default: 3000 (sql), 2000 (intercom)")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.suite == "sql":
        sql.run(args.contacts or 100_000, args.requests or 3000, args.concurrency)
    elif args.suite == "intercom":
        intercom.run(args.contacts or 50_000, args.requests or 2000, args.concurrency)
    elif args.suite == "zendesk":
        zendesk.run(args.contacts or 50_000, args.requests or 2000, args.concurrency)
    elif args.suite == "salesforce":
        salesforce.run(args.contacts or 50_000, args.requests or 2000, args.concurrency)
    elif args.suite == "hubspot":
        hubspot.run(args.contacts or 50_000, 15_000, args.requests or 2000, args.concurrency)
    elif args.suite == "google":
        google.run(args.contacts or 30_000)
    elif args.suite == "highrise":
        highrise.run(args.contacts or 20_000)
    elif args.suite == "rest":
        rest.run(args.contacts or 50_000)
    elif args.suite == "hardening":
        hardening.run(concurrency=args.concurrency)


main()

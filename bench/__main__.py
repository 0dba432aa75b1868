"""`python -m bench [sql] [--contacts N]`: prints the figures quoted in the README."""

from __future__ import annotations

import argparse

from bench import sql


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suite", nargs="?", default="sql", choices=["sql"])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.suite == "sql":
        sql.run(args.contacts, args.requests, args.concurrency)


main()

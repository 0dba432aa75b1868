"""Run the fake standalone:

    python -m tests.fakes.intercom --host 127.0.0.1 --port 8765 --contacts 5000 \
        --latency-ms 20 --token TOKEN --seed 1
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

from ._fake import FakeIntercom

__all__ = ["build_fake", "main"]

_SUBJECTS = (
    "I can't log in to my account",
    "Question about my last invoice",
    "How do I export my data?",
    "The mobile app crashes on start",
    "Can I change my plan?",
    "Refund request",
)


def build_fake(args: argparse.Namespace) -> FakeIntercom:
    fake = FakeIntercom(
        token=args.token,
        app_id=args.app_id,
        timezone=args.timezone,
        search_lag=args.search_lag,
        latency=args.latency_ms / 1000,
        rate_limit=(args.rate_limit, 10),
        seed=args.seed,
    )
    contacts = fake.seed_contacts(args.contacts)
    rng = random.Random(args.seed)
    types = [t["id"] for t in fake.store.ticket_types()]
    now = int(fake.now)
    # Roughly a third of contacts talked to support; one in ten opened a ticket.
    for contact in contacts:
        if rng.random() < 0.33:
            for _ in range(rng.choice((1, 1, 2, 3))):
                created = rng.randint(contact["created_at"], now)
                state = rng.choice(("open", "closed", "closed", "snoozed"))
                fake.add_conversation(
                    contact["id"],
                    body=rng.choice(_SUBJECTS),
                    created_at=created,
                    updated_at=rng.randint(created, now),
                    state=state,
                    read=state != "open",
                    priority=rng.choice(("priority", "not_priority", "not_priority")),
                    admin_assignee_id=None if state == "open" else int(fake.me_id),
                )
        if rng.random() < 0.1:
            created = rng.randint(contact["created_at"], now)
            fake.add_ticket(
                contact["id"],
                ticket_type_id=rng.choice(types),
                title=rng.choice(_SUBJECTS),
                state=rng.choice(("submitted", "in_progress", "waiting_on_customer", "resolved")),
                created_at=created,
                updated_at=rng.randint(created, now),
            )
    return fake


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.intercom", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--app-id", default="abc123de")
    parser.add_argument("--timezone", default="Europe/Lisbon")
    parser.add_argument("--search-lag", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=1666, help="calls per 10 s window")
    args = parser.parse_args(argv)

    import uvicorn

    fake = build_fake(args)
    print(
        f"fake Intercom on http://{args.host}:{args.port} with {args.contacts} contacts "
        f"(token {args.token!r})",
        file=sys.stderr,
    )
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

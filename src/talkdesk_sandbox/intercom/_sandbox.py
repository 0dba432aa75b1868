"""``IntercomSandbox``: ``FakeIntercom`` behind the kit's ``Sandbox`` protocol (the registry's
``intercom`` entry, used by ``python -m talkdesk_sandbox intercom`` and generic tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._clock import Clock
from .._registry import Sandbox
from .._seed import Faker, ascii_slug
from ._fake import FakeIntercom
from ._seed import ContactFaker

__all__ = ["IntercomSandbox"]

_WINDOW = 10.0  # Intercom's rate-limit windows are 10 seconds long


class IntercomSandbox(FakeIntercom):
    """A fake Intercom workspace for the bridge's ``intercom`` connector.

    ``rate_limit`` is calls per 10-second window (or a (calls, seconds) pair; None: no
    limit), ``lag`` the search lag; other options are ``FakeIntercom``'s."""

    connector = "intercom"

    def __init__(
        self,
        *,
        token: str = "test-token",
        latency: float = 0.0,
        clock: Clock | None = None,
        lag: float | None = None,
        rate_limit: int | tuple[int, float] | None = 1666,
        **options: Any,
    ) -> None:
        if lag is not None:
            options["search_lag"] = lag
        window = rate_limit if not isinstance(rate_limit, int) else (rate_limit, _WINDOW)
        super().__init__(token=token, latency=latency, clock=clock, rate_limit=window, **options)

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """``contacts`` contacts; a third talked to support (1 to 3 conversations), one in
        ten opened a ticket; a support team of admins. Same seed, same data."""
        self.store.faker = ContactFaker(seed)
        self.store.rng.seed(seed)
        people = Faker(seed + 1)
        rng = people.rng
        domain = f"{self.app_id}.example.com"
        for n, person in enumerate(people.people(4), 1):
            mailbox = f"{ascii_slug(person.first_name)}.{ascii_slug(person.last_name)}{n}"
            self.add_admin(person.name, f"{mailbox}@{domain}", job_title="Support agent")
        created = self.seed_contacts(contacts)
        types = [t["id"] for t in self.store.ticket_types()]
        now = int(self.now)
        admins = [int(a["id"]) for a in self.store.admins()]
        for contact in created:
            if rng.random() < 0.33:
                for _ in range(rng.choice((1, 1, 2, 3))):
                    started = people.timestamp(contact["created_at"], now)
                    state = rng.choice(("open", "closed", "closed", "snoozed"))
                    self.add_conversation(
                        contact["id"],
                        body=people.subject(),
                        created_at=started,
                        updated_at=people.timestamp(started, now),
                        state=state,
                        read=state != "open",
                        priority=rng.choice(("priority", "not_priority", "not_priority")),
                        admin_assignee_id=None if state == "open" else rng.choice(admins),
                    )
            if types and rng.random() < 0.1:
                started = people.timestamp(contact["created_at"], now)
                self.add_ticket(
                    contact["id"],
                    ticket_type_id=rng.choice(types),
                    title=people.subject(),
                    state=rng.choice(
                        ("submitted", "in_progress", "waiting_on_customer", "resolved")
                    ),
                    created_at=started,
                    updated_at=people.timestamp(started, now),
                )

    def credentials(self) -> dict[str, str]:
        return {"access_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        return {"access_token": f"revoked-{self.token}"}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {"TALKDESK_BRIDGE_INTERCOM_BASE_URL": base_url}


if TYPE_CHECKING:  # mypy checks that the class implements the protocol

    def _implements(sandbox: IntercomSandbox) -> Sandbox:
        return sandbox

"""Three sample company APIs for the bridge's `rest` connector, one per paging style, on the
kit (one sandbox, ``style=``):

- ``"pages"``: ``GET /api/v1/contacts?updated_since=<ISO 8601>&sort=updated_at&page=N``, page
  numbers over the list as it is at each call (an update moves a contact to the end and every
  later one back a place), whole-second times, a bearer token;
- ``"cursor"``: ``GET /api/v1/customers?modified_after=<epoch ms>`` with an opaque
  ``next_cursor`` in the body (a keyset position, stable under writes), an ``X-Api-Key``;
- ``"keyset"``: ``GET /api/v1/people?updated_after=<epoch s>[&after_id=ID]``, a bare JSON array
  and ``Link: <...>; rel="next"`` carrying the (time, id) position, HTTP Basic.

All three: list reads see writes ``lag`` seconds late (late commits with ``delay``), direct
reads are live; lookups by email and phone, tickets (``{contact_id}`` in the path) and calls
(``?contact_id=``) numbered alike, agents, and three actions; 429 + ``Retry-After`` past
``rate_limit`` calls per 10 s. Each style has its mapping file in ``mappings/``.
"""

from ._sandbox import MAPPINGS, STYLES, RestSandbox

__all__ = ["MAPPINGS", "STYLES", "RestSandbox"]

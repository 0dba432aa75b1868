"""The contact-sync engine: the one place that decides how offsets and checkpoints lose nothing.

Two shapes, for the two kinds of upstream:

- `WindowSync` for sources that list records by modification time (a database's
  `updated_at`, Salesforce's `SystemModstamp`, HubSpot's `lastmodifieddate`, Highrise's
  `since=`): a connector writes one `WindowSource.fetch` and a watermark;
- `FeedSync` for sources with their own change feed (Zendesk's export cursor, Google's sync
  tokens): a connector writes one `FeedSource.read`.

Connectors map records to contacts; they never build offsets or checkpoints themselves.
"""

from ._common import Record
from ._feed import CursorExpired, FeedBatch, FeedSource, FeedStart, FeedSync
from ._stamps import EpochStamps, NativeStamps, Stamps, shift_stamp
from ._window import Batch, Window, WindowSource, WindowSync

__all__ = [
    "Batch",
    "CursorExpired",
    "EpochStamps",
    "FeedBatch",
    "FeedSource",
    "FeedStart",
    "FeedSync",
    "NativeStamps",
    "Record",
    "Stamps",
    "Window",
    "WindowSource",
    "WindowSync",
    "shift_stamp",
]

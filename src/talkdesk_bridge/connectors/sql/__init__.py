"""A company's own SQL database (SQLite, PostgreSQL, MariaDB/MySQL) as a Talkdesk integration."""

from .connector import SqlConnector

__all__ = ["SqlConnector"]

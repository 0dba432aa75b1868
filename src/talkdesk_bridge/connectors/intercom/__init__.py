"""Intercom (REST API 2.x) as a Talkdesk integration: contacts, conversations, tickets."""

from .connector import IntercomConnector

__all__ = ["IntercomConnector"]

"""Google Contacts (People API v1): contact sync on sync tokens, and a create-contact action."""

from .connector import GoogleConnector

__all__ = ["GoogleConnector"]

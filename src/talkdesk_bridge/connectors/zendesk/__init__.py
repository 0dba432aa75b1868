"""The Zendesk Support connector (see connector.py)."""

from .connector import ZendeskConnector

__all__ = ["ZendeskConnector"]

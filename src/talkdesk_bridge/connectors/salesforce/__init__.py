"""Salesforce (REST API) as a Talkdesk integration: Contacts and Leads, Tasks, Events, Cases."""

from .connector import SalesforceConnector

__all__ = ["SalesforceConnector"]

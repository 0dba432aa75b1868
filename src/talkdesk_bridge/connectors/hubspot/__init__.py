"""HubSpot CRM: contact sync past the search cap, engagements and tickets, actions, owners."""

from .connector import HubSpotConnector

__all__ = ["HubSpotConnector"]

"""Highrise (37signals' CRM, XML API): people with zero loss over a shifting offset listing,
notes, emails and tasks as interactions, note/task/person actions, users as agents."""

from .connector import HighriseConnector

__all__ = ["HighriseConnector"]

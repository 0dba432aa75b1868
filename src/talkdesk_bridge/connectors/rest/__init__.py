"""A company's own REST/JSON API, described by a TOML mapping file: contacts with zero loss
on the sync engine whatever the paging style, interactions, actions and agents."""

from .connector import RestConnector

__all__ = ["RestConnector"]

"""talkdesk-bridge: Talkdesk's Integrations API in front of the systems that hold customer data."""

from ._app import create_app
from ._errors import BridgeError, ConfigurationError
from ._settings import Settings

__all__ = ["BridgeError", "ConfigurationError", "Settings", "__version__", "create_app"]

__version__ = "0.1.0"

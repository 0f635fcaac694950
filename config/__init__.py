"""Configuration: typed settings read from the environment (see ``config.settings``)."""

from config.settings import ConfigurationError, Settings

__all__ = ["ConfigurationError", "Settings"]

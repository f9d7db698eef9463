"""The error an integration raises when its framework is not installed."""

from __future__ import annotations

from convstore.exceptions import ConfigurationError


def missing_extra(integration: str, extra: str, error: ImportError) -> ConfigurationError:
    """A ConfigurationError saying which extra installs what `integration` could not import."""
    return ConfigurationError(
        f"convstore.integrations.{integration} needs {error.name or 'its framework'}, "
        f"installed by the {extra!r} extra: pip install 'convstore[{extra}]'"
    )

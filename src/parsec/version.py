"""The package version, in a module of its own: every layer may read it without
importing ``parsec`` (whose ``__init__`` imports the facade, hence everything)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"

"""Backends for the engine's contracts: ``memory`` (the embedded default) here; Redis
and NATS arrive as optional modules imported only when chosen."""

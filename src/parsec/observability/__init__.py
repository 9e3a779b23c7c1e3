"""Observability: metrics, traces and logs of a Parsec instance.

Modules load on demand (``parsec.observability.metrics`` imports prometheus-client);
importing this package imports nothing else.
"""

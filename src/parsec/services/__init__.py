"""Parsec's services: what :class:`parsec.Parsec` delegates to, one class per module.

- :mod:`parsec.services.channels`: channel lifecycle, Parsec tokens, refresh, revocation
- :mod:`parsec.services.keys`: the keyring's operations
- :mod:`parsec.services.delivery`: sinks, the dead-letter queue, ``publish_or_sink``
- :mod:`parsec.services.authority`: the engine's ChannelAuthority for managed channels
- :mod:`parsec.services.payload`: the one JSON encoding path of publications

Layering (``tests/unit/test_layers.py``): services sit above the engine and the
channels / auth / backends packages, and below the facade and the HTTP / CLI surfaces.
A service gets what it needs through its constructor, never the facade. A new
capability becomes a service of the same shape: a typed class with ``start`` and an
idempotent ``aclose`` when it owns I/O, started and closed by ``Parsec``.
"""

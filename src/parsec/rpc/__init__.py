"""Service layer: the Centrifugo server API (and, later, ParsecService)."""

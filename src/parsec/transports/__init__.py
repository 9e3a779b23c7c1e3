"""Client transports: the WebSocket endpoint (ASGI)."""

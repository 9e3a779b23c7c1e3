"""Protocol tests: a real Parsec server in-process, driven by a raw WebSocket client."""

"""ASGI assembly: routes and middleware."""

"""One bounded request to an identity provider (GitHub, an OpenID provider), shared by
the logins: the status and at most ``max_bytes`` of body, or the login's own error —
"unavailable" (temporary) for a 5xx, a timeout or a transport failure, "bad response"
for a body over the limit. Messages name the endpoint, never a token or a secret."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

__all__ = ["ProviderErrors", "fetch"]

ProviderErrors = tuple[Callable[[str], Exception], Callable[[str], Exception]]
"""``(unavailable, bad_response)``: each makes the login's error from a message."""


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    endpoint: str,
    max_bytes: int,
    errors: ProviderErrors,
    headers: Mapping[str, str],
    data: Mapping[str, str] | None = None,
    **options: Any,
) -> tuple[int, bytes]:
    """``method url`` (a form body when ``data``); the status and the body."""
    unavailable, bad_response = errors
    try:
        async with client.stream(method, url, headers=headers, data=data, **options) as response:
            if response.status_code >= 500:
                raise unavailable(
                    f"{endpoint} answered HTTP {response.status_code}; try again later"
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise bad_response(f"{endpoint} answered over {max_bytes} bytes")
            return response.status_code, bytes(body)
    except httpx.TimeoutException:
        raise unavailable(f"{endpoint} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise unavailable(f"{endpoint} could not be reached ({type(exc).__name__})") from None

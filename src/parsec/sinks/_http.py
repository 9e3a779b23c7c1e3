"""One HTTP POST for the Slack and webhook sinks, with failures as SinkErrors.

Classification: transport errors and timeouts are transient; a response of 429 or
5xx is transient and carries its Retry-After (seconds or an HTTP date); any other
status of 300 or more is terminal. Messages never carry the URL or request headers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from parsec.sinks.base import SinkError

__all__ = ["parse_retry_after", "post"]

_MAX_BODY_TEXT: Final = 200


async def post(
    url: str,
    content: bytes,
    headers: Mapping[str, str],
    *,
    client: httpx.AsyncClient | None,
    request_timeout: float,
    what: str,
    clock: Callable[[], float],
) -> None:
    """POST ``content`` to ``url``; return on a 2xx response, else raise SinkError.
    ``client`` is used when given (and left open); otherwise one is made and closed.
    ``what`` names the sink in error messages."""
    try:
        if client is None:
            async with httpx.AsyncClient(follow_redirects=False) as own:
                response = await own.post(
                    url, content=content, headers=headers, timeout=request_timeout
                )
        else:
            response = await client.post(
                url, content=content, headers=headers, timeout=request_timeout
            )
    except httpx.TimeoutException as e:
        raise SinkError(f"{what}: timed out ({type(e).__name__})", transient=True) from None
    except httpx.TransportError as e:
        detail = str(e).replace(url, "<url>")
        raise SinkError(f"{what}: {type(e).__name__}: {detail}", transient=True) from None
    if response.status_code >= 300:
        raise _status_error(response, what, clock)


def _status_error(response: httpx.Response, what: str, clock: Callable[[], float]) -> SinkError:
    status = response.status_code
    transient = status == 429 or status >= 500
    text = " ".join(response.text[:_MAX_BODY_TEXT].split())
    message = f"{what}: HTTP {status}" + (f": {text}" if text else "")
    retry_after = parse_retry_after(response.headers.get("retry-after"), clock())
    return SinkError(message, transient=transient, retry_after=retry_after if transient else None)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks to wait: delay-seconds, or an HTTP date
    minus ``now`` (never negative). None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC with no source zone
            when = when.replace(tzinfo=UTC)
        return max(when.timestamp() - now, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

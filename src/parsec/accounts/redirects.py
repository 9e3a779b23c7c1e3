"""The open-redirect guard: where a login may send the browser back to.

:func:`safe_next` lets through only a path on this site, a *single-slash relative
path* such as ``/dashboard?tab=keys#top``; anything else becomes ``"/"``. It is what
``/auth/github/start?next=`` keeps, and what the callback redirects to.

Refused (→ ``"/"``), because a browser would leave the site, or might:

- nothing: ``None``, ``""``; more than :data:`MAX_NEXT_LENGTH` characters;
- not a path: ``https://evil.com``, ``javascript:alert(1)``, ``evil.com``, ``dashboard``;
- a network path: ``//evil.com``, ``/\\evil.com``, ``\\\\evil.com`` (browsers read ``\\``
  as ``/``), so any backslash at all;
- whitespace or a control character anywhere, leading and trailing included (browsers
  drop tabs and newlines from URLs: ``/\\t/evil.com`` is ``//evil.com``), or any
  character outside printable ASCII (a real path is percent-encoded);
- the same tricks percent-encoded, once or several times (``/%2F%2Fevil.com``,
  ``/%5Cevil.com``, ``/%09/evil.com``, ``/%252F%252Fevil.com``, ``%0d%0a`` header
  injection): the value is decoded until it no longer changes, and every form must
  pass; a value still changing after :data:`MAX_DECODES` rounds is refused;
- a look-alike slash or backslash after Unicode normalisation (``/%EF%BC%8Fevil.com``,
  the fullwidth solidus).

A value that passes is returned exactly as given, never decoded.
"""

from __future__ import annotations

import unicodedata
from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_DECODES", "MAX_NEXT_LENGTH", "safe_next"]

MAX_NEXT_LENGTH: Final = 2048
MAX_DECODES: Final = 4
_HOME: Final = "/"


def safe_next(value: str | None) -> str:
    """``value`` when it is a single-slash relative path on this site, else ``"/"``.

    Total: never raises, whatever ``value`` is.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT_LENGTH:
        return _HOME
    if not all("\x21" <= char <= "\x7e" for char in value):
        return _HOME
    form = value
    for _ in range(MAX_DECODES + 1):
        if not _is_local_path(form):
            return _HOME
        decoded = unquote(form, errors="replace")
        if decoded == form:
            return value
        form = decoded
    return _HOME


def _is_local_path(form: str) -> bool:
    """One form of the value: a path starting with exactly one slash, with no
    backslash, whitespace or control character, before and after NFKC."""
    for candidate in (form, unicodedata.normalize("NFKC", form)):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return False
        if any(
            char == "\\" or char.isspace() or unicodedata.category(char)[0] == "C"
            for char in candidate
        ):
            return False
        try:
            parts = urlsplit(candidate)
        except ValueError:
            return False
        if parts.scheme or parts.netloc:
            return False
    return True

"""What a failed API request is, decided once for both HTTP APIs.

Each API renders a failure in the shape its protocol dictates: ParsecService a Twirp
error body with an HTTP status (:mod:`parsec.api.twirp`), the Centrifugo server API
``{"error": {"code", "message"}}`` with status 200 (:mod:`parsec.api.centrifugo`). What
the failure *is* (its code and message) comes from here:

* a :class:`~parsec.errors.ParsecError` is itself: its ``PARSEC_*`` code maps to a Twirp
  code and status (:data:`parsec.errors.CODES`) or, for a client-protocol reply, to a
  :class:`~parsec.engine.codes.ClientError` (:func:`client_error`);
* a ClientError is itself (the engine raised it for the Centrifugo API);
* a request body that does not fit the method's message, whichever library validated
  it, is ``PARSEC_INVALID_ARGUMENT`` ``invalid request body: <problems>``
  (:func:`invalid_body`, :func:`not_an_object`), naming each broken field and never
  echoing what was sent;
* anything else is a bug: logged by the caller, answered ``PARSEC_INTERNAL`` with no
  detail (:func:`internal_error`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from parsec.engine.codes import ClientError
from parsec.errors import ParsecError

__all__ = ["client_error", "internal_error", "invalid_body", "not_an_object", "parsec_error"]

_JSON_KINDS: Final[dict[type, str]] = {
    type(None): "null",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def internal_error() -> ParsecError:
    """``PARSEC_INTERNAL``, saying nothing of what failed."""
    return ParsecError("PARSEC_INTERNAL", "internal error")


def parsec_error(exc: Exception) -> ParsecError:
    """``exc`` when it is a ParsecError, else :func:`internal_error` (the caller logs
    the unexpected exception)."""
    return exc if isinstance(exc, ParsecError) else internal_error()


def client_error(exc: ParsecError | ClientError) -> ClientError:
    """The client-protocol error a Centrifugo API reply carries for ``exc``: a ClientError
    as it is, a ParsecError as :meth:`~parsec.errors.ParsecError.client_error` maps it
    (a store failure is a temporary internal error, 100)."""
    return exc if isinstance(exc, ClientError) else exc.client_error()


def invalid_body(problems: Iterable[tuple[str, str]]) -> ParsecError:
    """``PARSEC_INVALID_ARGUMENT`` for a body that does not fit its message: each problem
    is ``(where, why)``, ``where`` the dotted path of the field ("" for the body)."""
    described = [f"{where}: {why}" if where else why for where, why in problems]
    return ParsecError("PARSEC_INVALID_ARGUMENT", "invalid request body: " + "; ".join(described))


def not_an_object(value: object) -> ParsecError | None:
    """``PARSEC_INVALID_ARGUMENT`` when the decoded JSON body ``value`` is not an object
    (every request message is one), else None."""
    if isinstance(value, dict):
        return None
    kind = _JSON_KINDS.get(type(value), "not an object")
    return ParsecError(
        "PARSEC_INVALID_ARGUMENT",
        f"invalid request body: a request message is a JSON object, not {kind}",
    )

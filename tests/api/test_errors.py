"""parsec.api.errors: what a failed request is, whichever API answers it."""

from __future__ import annotations

import pytest

from parsec.api.errors import (
    client_error,
    internal_error,
    invalid_body,
    not_an_object,
    parsec_error,
)
from parsec.engine.codes import errors
from parsec.errors import ParsecClientError, ParsecError


def test_invalid_body_names_each_field_and_the_body() -> None:
    """Each problem is "where: why", or just "why" for the body as a whole."""
    error = invalid_body([("name", "Field required"), ("", "Input should be an object")])

    assert error.code == "PARSEC_INVALID_ARGUMENT"
    assert error.message == (
        "invalid request body: name: Field required; Input should be an object"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), ([], "an array"), ("x", "a string"), (True, "a boolean"), (1.5, "a number")],
)
def test_not_an_object_says_what_the_body_is(value: object, kind: str) -> None:
    """JSON that is not an object is an invalid argument naming what it is instead."""
    error = not_an_object(value)

    assert error is not None
    assert error.code == "PARSEC_INVALID_ARGUMENT"
    assert error.message.endswith(f"a request message is a JSON object, not {kind}")


def test_an_object_is_not_refused() -> None:
    """A JSON object is left to the method's message to judge."""
    assert not_an_object({}) is None


def test_parsec_error_keeps_a_parsec_error_and_hides_anything_else() -> None:
    """A bug becomes PARSEC_INTERNAL with no detail."""
    denied = ParsecError("PARSEC_AUTH_DENIED", "no")

    assert parsec_error(denied) is denied
    hidden = parsec_error(RuntimeError("secret detail"))
    assert (hidden.code, hidden.message) == (internal_error().code, "internal error")


def test_client_error_maps_a_parsec_error_and_keeps_a_client_error() -> None:
    """The Centrifugo API's replies carry the client-protocol code of a ParsecError."""
    bad = errors.BAD_REQUEST()
    assert client_error(bad) is bad

    mapped = client_error(ParsecError("PARSEC_INTERNAL", "store down"))
    assert isinstance(mapped, ParsecClientError)
    assert (mapped.code, mapped.temporary) == (100, True)

"""The regular expressions ``/openapi.json`` gives for channel names, scope patterns and
bounded integer fields accept exactly what the service accepts, so a client (or
Schemathesis) that follows the document is neither refused nor misled."""

from __future__ import annotations

import re

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.api.management_models import DlqListRequest, OpenPublicRequest
from parsec.channels.names import (
    NAME_REGEX,
    PRIVATE_NAME_REGEX,
    PUBLIC_NAME_REGEX,
    is_valid_name,
    parse_name,
)
from parsec.channels.patterns import PATTERN_REGEX, ChannelPattern
from parsec.errors import ParsecError

NAMEISH = st.text(alphabet="publicrvate:.az09_-*Z ", max_size=40)
"""Strings made of the characters names and patterns use, and a few they may not."""


def matches(regex: str, text: str) -> bool:
    return re.fullmatch(regex, text) is not None


def is_pattern(text: str) -> bool:
    try:
        ChannelPattern.parse(text)
    except ParsecError:
        return False
    return True


@given(NAMEISH | st.from_regex(NAME_REGEX, fullmatch=True))
def test_the_name_regexes_are_the_grammar(text: str) -> None:
    valid = is_valid_name(text)
    assert matches(NAME_REGEX, text) == valid
    visibility = parse_name(text).visibility if valid else None
    assert matches(PUBLIC_NAME_REGEX, text) == (visibility == "public")
    assert matches(PRIVATE_NAME_REGEX, text) == (visibility == "private")


@given(NAMEISH | st.from_regex(PATTERN_REGEX, fullmatch=True))
def test_the_pattern_regex_is_the_pattern_grammar(text: str) -> None:
    assert matches(PATTERN_REGEX, text) == is_pattern(text)


def string_branch(schema: dict[str, object]) -> str:
    branches = schema["anyOf"]
    assert isinstance(branches, list)
    pattern = next(branch["pattern"] for branch in branches if branch["type"] == "string")
    assert isinstance(pattern, str)
    return pattern


DECIMALS = st.from_regex(r"-?[0-9]{1,12}", fullmatch=True) | st.integers(-5, 2**32).map(str)


@pytest.mark.parametrize(
    ("model", "field", "extra"),
    [(OpenPublicRequest, "ttl_seconds", {"name": "public:a.b"}), (DlqListRequest, "limit", {})],
)
@given(text=DECIMALS)
def test_a_bounded_integer_string_is_documented_exactly(
    model: type[pydantic.BaseModel], field: str, extra: dict[str, object], text: str
) -> None:
    """The string form of ``ttl_seconds`` and ``limit``: the document's pattern matches
    exactly the decimal strings the service takes (its range, leading zeros, ``-0``)."""
    schema = model.model_json_schema()["properties"][field]
    try:
        model.model_validate({**extra, field: text})
    except pydantic.ValidationError:
        accepted = False
    else:
        accepted = True
    assert matches(string_branch(schema), text) == accepted

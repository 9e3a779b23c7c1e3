"""Channel patterns: ``<visibility>:<segment>(.<segment>)*`` with ``*`` and trailing ``**``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.channels.patterns import MAX_PATTERN_DEPTH, ChannelPattern
from parsec.errors import ParsecError

COMPONENT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_-"
components = st.text(alphabet=COMPONENT_ALPHABET, min_size=1, max_size=8)


@st.composite
def valid_names(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A valid channel name and its components."""
    visibility = draw(st.sampled_from(["public", "private"]))
    low = 3 if visibility == "private" else 2
    parts = draw(st.lists(components, min_size=low, max_size=4))
    return visibility, parts


@pytest.mark.parametrize(
    "text",
    [
        "public:**",
        "private:**",
        "public:*",
        "public:app.news",
        "public:*.news",
        "private:app.*.*.topic",
        "private:app.analysis.**",
        "public:a.b.c.d.e.f.g.h",
        "public:*.*.*.*.*.*.*.**",
        "public:my-app.user_data.0",
    ],
)
def test_valid_patterns_parse_and_round_trip(text: str) -> None:
    """A valid pattern parses, and str() gives the text back."""
    pattern = ChannelPattern.parse(text)

    assert str(pattern) == text
    assert ChannelPattern.parse(str(pattern)) == pattern


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must start with 'public:' or 'private:'"),
        ("public", "must start with 'public:' or 'private:'"),
        ("public:", "must start with 'public:' or 'private:'"),
        (":app.news", "must start with 'public:' or 'private:'"),
        ("*:app.news", "visibility must be 'public' or 'private'"),
        ("**:app", "visibility must be 'public' or 'private'"),
        ("internal:app.news", "visibility must be 'public' or 'private'"),
        ("Public:app.news", "visibility must be 'public' or 'private'"),
        ("public:app:news", "reserved for the visibility prefix"),
        ("public:app..news", "a segment is empty"),
        ("public:.app", "a segment is empty"),
        ("public:app.", "a segment is empty"),
        ("public:**.news", "'**' is only allowed as the last segment"),
        ("public:app.**.news", "'**' is only allowed as the last segment"),
        ("public:***", "segment '***' must be"),
        ("public:app*", "segment 'app*' must be"),
        ("public:App.news", "segment 'App' must be"),
        ("public:café.news", "segment 'café' must be"),
        ("public:app news", "segment 'app news' must be"),
        ("public:a.b.c.d.e.f.g.h.i", f"has 9 segments; at most {MAX_PATTERN_DEPTH}"),
    ],
)
def test_malformed_patterns_are_invalid_arguments(text: str, reason: str) -> None:
    """A malformed pattern raises PARSEC_INVALID_ARGUMENT (HTTP 400) saying what is wrong."""
    with pytest.raises(ParsecError) as caught:
        ChannelPattern.parse(text)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert caught.value.http_status == 400
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("pattern", "channel", "expected"),
    [
        ("public:app.news", "public:app.news", True),
        ("public:app.news", "public:app.sport", False),
        ("public:app.news", "public:app.news.1", False),
        ("public:app.*", "public:app.news", True),
        ("public:app.*", "public:app.news.1", False),
        ("public:*.news", "public:anything.news", True),
        ("public:*.news", "public:anything.sport", False),
        ("private:app.*.*.done", "private:app.jobs.42.done", True),
        ("private:app.*.*.done", "private:app.jobs.42", False),
        ("private:app.*.*.done", "private:app.jobs.42.started", False),
        ("public:app.**", "public:app.news", True),
        ("public:app.**", "public:app.news.1.breaking", True),
        ("public:app.news.**", "public:app.news", False),
        ("public:app.news.**", "public:app.news.1", True),
        ("public:**", "public:a.b", True),
        ("public:**", "public:a.b.c.d", True),
        ("public:**", "private:a.b.c", False),
        ("private:**", "public:a.b", False),
        ("public:app.news", "private:app.news.1", False),
        ("public:*", "public:app.news", False),
        ("public:*.*.*.*.*", "public:a.b.c.d", False),
    ],
)
def test_matching(pattern: str, channel: str, expected: bool) -> None:
    """Visibility must be equal; ``*`` is one component, ``**`` is one or more at the end."""
    assert ChannelPattern.parse(pattern).matches(channel) is expected


@pytest.mark.parametrize(
    "channel",
    [
        "",
        "public",
        "public:app",
        "public:App.news",
        "public:a.b.c.d.e",
        "private:app.news",
        "public:app..news",
        "*:app.news",
        "public:app.news:x",
    ],
)
def test_invalid_channel_names_match_nothing(channel: str) -> None:
    """A string that is not a valid channel name matches no pattern, even the widest."""
    for pattern in ("public:**", "private:**", "public:*", "public:*.*", "private:*.*"):
        assert ChannelPattern.parse(pattern).matches(channel) is False


@given(valid_names())
def test_double_star_matches_every_name_of_its_visibility(name: tuple[str, list[str]]) -> None:
    """``<visibility>:**`` covers every valid name of that visibility and no other."""
    visibility, parts = name
    channel = f"{visibility}:{'.'.join(parts)}"
    other = "private" if visibility == "public" else "public"

    assert ChannelPattern.parse(f"{visibility}:**").matches(channel)
    assert not ChannelPattern.parse(f"{other}:**").matches(channel)


@given(valid_names(), st.data())
def test_a_star_in_any_position_still_matches(
    name: tuple[str, list[str]], data: st.DataObject
) -> None:
    """The name itself as a pattern matches it, and so does any segment replaced by ``*``."""
    visibility, parts = name
    channel = f"{visibility}:{'.'.join(parts)}"
    position = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    starred = [*parts[:position], "*", *parts[position + 1 :]]

    assert ChannelPattern.parse(channel).matches(channel)
    assert ChannelPattern.parse(f"{visibility}:{'.'.join(starred)}").matches(channel)
    assert not ChannelPattern.parse(f"{visibility}:{'.'.join([*starred, '*'])}").matches(channel)


def test_patterns_with_equal_text_are_equal() -> None:
    """Two parses of one text are equal and hash alike; different texts differ."""
    first, second = ChannelPattern.parse("public:a.*"), ChannelPattern.parse("public:a.*")

    assert first == second
    assert hash(first) == hash(second)
    assert first != ChannelPattern.parse("public:a.**")

"""Parsec's channel name grammar: ``<visibility>:<app>.<domain>[.<id>][.<topic>]``."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parsec.channels.names import (
    ChannelName,
    InvalidChannelName,
    has_safe_characters,
    parse_name,
)

COMPONENT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_-"
components = st.text(alphabet=COMPONENT_ALPHABET, min_size=1, max_size=12)


@st.composite
def valid_names(draw: st.DrawFn) -> str:
    """A channel name the grammar accepts."""
    visibility = draw(st.sampled_from(["public", "private"]))
    low = 3 if visibility == "private" else 2
    parts = draw(st.lists(components, min_size=low, max_size=4))
    return f"{visibility}:{'.'.join(parts)}"


def parse_or_error(text: str) -> ChannelName | InvalidChannelName:
    """The parsed name, or the InvalidChannelName parse_name raised."""
    try:
        return parse_name(text)
    except InvalidChannelName as exc:
        return exc


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("public:webapp.system", ChannelName("public", "webapp", "system")),
        ("public:webapp.system.status", ChannelName("public", "webapp", "system", "status")),
        (
            "private:agent.analysis.abc123.progress",
            ChannelName("private", "agent", "analysis", "abc123", "progress"),
        ),
        ("private:a.b.c", ChannelName("private", "a", "b", "c")),
        ("public:my-app.user_data.0", ChannelName("public", "my-app", "user_data", "0")),
        ("public:-.-", ChannelName("public", "-", "-")),
        ("public:a.b.c.d", ChannelName("public", "a", "b", "c", "d")),
    ],
)
def test_valid_names_parse_into_components(name: str, expected: ChannelName) -> None:
    """A valid name parses into its components and str() gives the name back."""
    parsed = parse_name(name)
    assert parsed == expected
    assert str(parsed) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "channel name is empty"),
        ("public", "channel name must start with 'public:' or 'private:'"),
        (":app.domain", "channel name must start with 'public:' or 'private:'"),
        ("app.domain", "channel name must start with 'public:' or 'private:'"),
        ("secret:webapp.x.y", "unknown visibility 'secret'; want 'public' or 'private'"),
        ("Public:webapp.x", "unknown visibility 'Public'; want 'public' or 'private'"),
        ("$public:webapp.x", "unknown visibility '$public'; want 'public' or 'private'"),
        ("public:webapp:session.a", "the ':' character is reserved for the visibility prefix"),
        ("public:webapp.x:", "the ':' character is reserved for the visibility prefix"),
        ("public:", "channel name must include at least <app>.<domain>"),
        ("public:webapp", "channel name must include at least <app>.<domain>"),
        (
            "public:webapp.sys.x.y.z",
            "channel name has 5 components; at most 4: <app>.<domain>.<id>.<topic>",
        ),
        ("public:webapp..x", "component 2 of the channel name is empty"),
        ("public:.webapp", "component 1 of the channel name is empty"),
        ("public:webapp.x.", "component 3 of the channel name is empty"),
        (
            "public:Webapp.system",
            "invalid character 'W' in component 'Webapp'; allowed are a-z, 0-9, '_', '-'",
        ),
        (
            "public:web app.sys",
            "invalid character ' ' in component 'web app'; allowed are a-z, 0-9, '_', '-'",
        ),
        (
            "public:news.caf\u00e9",
            "invalid character '\u00e9' in component 'caf\u00e9'; allowed are a-z, 0-9, '_', '-'",
        ),
        (
            "public:news.room#42",
            "invalid character '#' in component 'room#42'; allowed are a-z, 0-9, '_', '-'",
        ),
        (
            "public:news.room\n",
            "invalid character '\\n' in component 'room\\n'; allowed are a-z, 0-9, '_', '-'",
        ),
        ("private:webapp.session", "private channel names must include an <id> component"),
    ],
)
def test_invalid_names_say_what_is_wrong(name: str, reason: str) -> None:
    """An invalid name raises InvalidChannelName whose message states the broken rule."""
    with pytest.raises(InvalidChannelName) as caught:
        parse_name(name)
    assert str(caught.value) == reason
    assert caught.value.code == "PARSEC_CHANNEL_INVALID"


def test_invalid_channel_name_is_a_value_error() -> None:
    """Callers that catch ValueError also catch InvalidChannelName."""
    with pytest.raises(ValueError, match="unknown visibility"):
        parse_name("nope:a.b")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (("shared", "a", "b", None, None), "unknown visibility 'shared'"),
        (("public", "a", "b", None, "topic"), "a channel name with a <topic> must also have"),
        (("public", "a", "", None, None), "component 2 of the channel name is empty"),
        (("public", "a", "b", "", None), "component 3 of the channel name is empty"),
        (("public", "a", "b.c", None, None), "invalid character '.' in component 'b.c'"),
        (("private", "a", "b", None, None), "private channel names must include an <id>"),
    ],
)
def test_constructing_an_invalid_channel_name_fails(
    fields: tuple[str, str, str, str | None, str | None], reason: str
) -> None:
    """ChannelName validates on construction, so no instance prints an unparseable name."""
    with pytest.raises(InvalidChannelName, match=reason):
        ChannelName(*fields)


def test_channel_name_is_immutable() -> None:
    """A parsed name cannot be changed after validation."""
    name = parse_name("public:a.b")
    with pytest.raises(AttributeError):
        name.app = "other"  # type: ignore[misc]


@given(valid_names())
def test_every_valid_name_parses_and_round_trips(name: str) -> None:
    """Every name the grammar allows parses, and str() of the result is the same name."""
    assert str(parse_name(name)) == name


@given(
    st.sampled_from(["public", "private"]),
    components,
    components,
    st.none() | components,
    st.none() | components,
)
def test_valid_components_build_a_name_that_parses_back(
    visibility: str, app: str, domain: str, id_: str | None, topic: str | None
) -> None:
    """A ChannelName built from valid parts is either rejected or parses back to itself."""
    try:
        name = ChannelName(visibility, app, domain, id_, topic)
    except InvalidChannelName:
        assert id_ is None
        return
    assert parse_name(str(name)) == name


@given(st.text() | st.text(alphabet="publicrvate:.-_aZ9#$ \u00e9", max_size=40))
@example("public:a.b")
@example("private:a.b.c.d")
def test_arbitrary_text_parses_or_raises_invalid_channel_name(text: str) -> None:
    """Any string either parses and round-trips or raises InvalidChannelName, nothing else."""
    outcome = parse_or_error(text)
    if isinstance(outcome, InvalidChannelName):
        assert str(outcome)
    else:
        assert str(outcome) == text


@pytest.mark.parametrize("bad", ["public:App.x", "nope", "", 42, None])
def test_require_name_raises_channel_invalid(bad: object) -> None:
    """require_name refuses anything that is not a Parsec name with PARSEC_CHANNEL_INVALID;
    is_valid_name answers False for the strings among them, never raising."""
    from parsec.channels.names import is_valid_name, require_name
    from parsec.errors import ParsecError

    with pytest.raises(ParsecError) as info:
        require_name(bad)
    assert info.value.code == "PARSEC_CHANNEL_INVALID"
    if isinstance(bad, str):
        assert is_valid_name(bad) is False
    assert str(require_name("public:app.x")) == "public:app.x"


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=20))
@example("chat:\x00")
@example("chat:\x7f")
@example("a b.*>")
def test_safe_characters_are_exactly_printable_ascii(name: str) -> None:
    """The one rule for any channel name's characters: 0x20-0x7e, space included."""
    assert has_safe_characters(name) == all(0x20 <= ord(c) <= 0x7E for c in name)


@pytest.mark.parametrize("name", ["caf\u00e9", "chat:\u2028", "chat:\x85", "\ud800"])
def test_non_ascii_is_never_safe(name: str) -> None:
    """Non-ASCII characters (line separators and lone surrogates too) are refused."""
    assert not has_safe_characters(name)

"""Channel resolution: namespaces, reserved characters, Parsec's built-in namespaces."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parsec.channels.namespaces import ChannelRules, ResolvedChannel, validate_namespace_name
from parsec.channels.options import ChannelOptions, Namespace
from parsec.engine.codes import ClientError
from parsec.options import ClientOptions, Options

BAD_REQUEST = 107
UNKNOWN_CHANNEL = 102

OPERATOR_NAMESPACES = [
    Namespace(name="news", presence=True),
    Namespace(name="dialog", allow_user_limited_channels=True),
    Namespace(name="orders", channel_regex=r"[a-z]+-[0-9]+"),
    Namespace(name="secure", require_subscription_token=True),
]
RULES = ChannelRules.from_options(Options(namespaces=list(OPERATOR_NAMESPACES)))


def error_code(rules: ChannelRules, channel: str) -> int:
    """The client error code resolve() raises for ``channel``."""
    with pytest.raises(ClientError) as caught:
        rules.resolve(channel)
    return caught.value.code


def resolve_or_error(rules: ChannelRules, channel: str) -> ResolvedChannel | ClientError:
    """The resolved channel, or the ClientError resolve() raised."""
    try:
        return rules.resolve(channel)
    except ClientError as exc:
        return exc


@pytest.mark.parametrize("name", ["ab", "news", "chat-rooms", "Team_42", "--", "__"])
def test_valid_namespace_names_are_accepted(name: str) -> None:
    """Names of two or more [-a-zA-Z0-9_] characters are valid namespace names."""
    validate_namespace_name(name)


@pytest.mark.parametrize("name", ["", "a", "news:x", "caf\u00e9", "with space", "ns\n", "$ns"])
def test_invalid_namespace_names_are_rejected(name: str) -> None:
    """Anything else is a ValueError that names the rejected name."""
    with pytest.raises(ValueError, match="invalid namespace name") as caught:
        validate_namespace_name(name)
    assert repr(name) in str(caught.value)


def test_rules_reject_duplicate_namespaces() -> None:
    """Two namespaces with one name are a configuration error naming the namespace."""
    namespaces = [Namespace(name="news"), Namespace(name="news", presence=True)]
    with pytest.raises(ValueError, match="duplicate namespace 'news'"):
        ChannelRules(namespaces, ChannelOptions())


def test_rules_reject_invalid_namespace_names() -> None:
    """A namespace whose name breaks the namespace grammar is a configuration error."""
    with pytest.raises(ValueError, match="invalid namespace name 'x'"):
        ChannelRules([Namespace(name="x")], ChannelOptions())


def test_rules_reject_an_invalid_channel_regex() -> None:
    """A channel_regex that does not compile is reported with its namespace."""
    with pytest.raises(ValueError, match="namespace 'news': invalid channel_regex '\\['"):
        ChannelRules([Namespace(name="news", channel_regex="[")], ChannelOptions())


def test_rules_reject_an_invalid_without_namespace_regex() -> None:
    """A broken channel_regex in the without_namespace options is reported as such."""
    with pytest.raises(ValueError, match="without_namespace: invalid channel_regex"):
        ChannelRules([], ChannelOptions(channel_regex="(unclosed"))


@pytest.mark.parametrize(("keyword", "value"), [("max_length", 0), ("cache_size", 0)])
def test_rules_reject_limits_below_one(keyword: str, value: int) -> None:
    """max_length and cache_size must be at least 1."""
    with pytest.raises(ValueError, match=f"{keyword} must be at least 1"):
        ChannelRules([], ChannelOptions(), **{keyword: value})


@pytest.mark.parametrize(
    ("channel", "namespace", "token_required"),
    [
        ("chat", "", False),
        ("$chat", "", True),
        (":chat", "", False),
        ("news:sport", "news", False),
        ("$news:sport", "news", True),
        ("news:", "news", False),
        ("news:a:b", "news", False),
        ("secure:vault", "secure", True),
        ("public:webapp.system", "public", False),
        ("public:webapp.system.status.live", "public", False),
        ("$public:webapp.system", "public", True),
        ("private:webapp.user.42", "private", True),
        ("$private:webapp.user.42.downloads", "private", True),
        ("orders:book-42", "orders", False),
    ],
)
def test_channels_resolve_to_their_namespace(
    channel: str, namespace: str, token_required: bool
) -> None:
    """The namespace is the text before the first ':' after any '$'; '$' needs a token."""
    resolved = RULES.resolve(channel)
    assert resolved.name == channel
    assert resolved.namespace == namespace
    assert resolved.token_required is token_required
    expected = RULES.namespace(namespace) if namespace else Options().without_namespace
    assert resolved.options == expected


@pytest.mark.parametrize(
    ("channel", "code"),
    [
        ("", BAD_REQUEST),
        ("caf\u00e9", BAD_REQUEST),
        ("news:caf\u00e9", BAD_REQUEST),
        ("news:\x00", BAD_REQUEST),
        ("news:a\nb", BAD_REQUEST),
        ("news:\x7f", BAD_REQUEST),
        ("news:\t", BAD_REQUEST),
        ("\n", BAD_REQUEST),
        ("sport:\x00", BAD_REQUEST),
        ("x" * 256, BAD_REQUEST),
        ("sport:news", UNKNOWN_CHANNEL),
        ("$sport:news", UNKNOWN_CHANNEL),
        ("NEWS:sport", UNKNOWN_CHANNEL),
        ("$$news:sport", UNKNOWN_CHANNEL),
        ("public:Webapp.system", BAD_REQUEST),
        ("public:webapp", BAD_REQUEST),
        ("public:webapp.system#42", BAD_REQUEST),
        ("private:webapp.session", BAD_REQUEST),
        ("$private:webapp.session", BAD_REQUEST),
        ("private:a.b.c.d.e", BAD_REQUEST),
        ("orders:book", BAD_REQUEST),
        ("orders:book-42x", BAD_REQUEST),
        ("orders:book_42", BAD_REQUEST),
    ],
)
def test_bad_channels_get_stable_error_codes(channel: str, code: int) -> None:
    """Malformed names are 107 bad request; names in unconfigured namespaces are 102."""
    assert error_code(RULES, channel) == code


def test_max_length_is_inclusive() -> None:
    """A name of exactly max_length characters resolves; one more is 107."""
    rules = ChannelRules([], ChannelOptions(), max_length=5)
    assert rules.resolve("abcde").name == "abcde"
    assert error_code(rules, "abcdef") == BAD_REQUEST


def test_from_options_uses_the_configured_max_length() -> None:
    """client.channel_max_length bounds channel names."""
    rules = ChannelRules.from_options(Options(client=ClientOptions(channel_max_length=8)))
    assert rules.resolve("12345678").namespace == ""
    assert error_code(rules, "123456789") == BAD_REQUEST


@pytest.mark.parametrize(
    ("channel", "users"),
    [
        ("dialog:chat#42", frozenset({"42"})),
        ("dialog:chat#42,43", frozenset({"42", "43"})),
        ("dialog:chat#42,,43,", frozenset({"42", "43"})),
        ("dialog:chat#", frozenset()),
        ("dialog:a#1#2,3", frozenset({"2", "3"})),
        ("$dialog:chat#42", frozenset({"42"})),
        ("dialog:chat", None),
    ],
)
def test_user_limited_channels_list_their_users(channel: str, users: frozenset[str] | None) -> None:
    """Users after the last '#' are listed, empty entries dropped; no '#' means no limit."""
    assert RULES.resolve(channel).user_limited == users


def test_user_list_is_ignored_where_not_allowed() -> None:
    """Without allow_user_limited_channels a '#' is an ordinary character."""
    assert RULES.resolve("news:chat#42").user_limited is None
    assert RULES.resolve("chat#42").user_limited is None


def test_without_namespace_can_allow_user_limited_channels() -> None:
    """Channels with no namespace follow the without_namespace options for '#'."""
    rules = ChannelRules([], ChannelOptions(allow_user_limited_channels=True))
    assert rules.resolve("#42").user_limited == frozenset({"42"})


def test_channel_regex_sees_the_part_after_the_namespace() -> None:
    """channel_regex must match all of the text after '<namespace>:', '$' prefix or not."""
    assert RULES.resolve("$orders:book-7").namespace == "orders"
    assert error_code(RULES, "$orders:$book-7") == BAD_REQUEST


def test_without_namespace_regex_sees_the_whole_name() -> None:
    """With no namespace, channel_regex must match the whole name, as in Centrifugo."""
    rules = ChannelRules([], ChannelOptions(channel_regex=r"\$?[a-z]+"))
    assert rules.resolve("$news").token_required is True
    assert error_code(rules, "news1") == BAD_REQUEST


def test_regex_counts_the_user_list_as_part_of_the_name() -> None:
    """A user-limited name must match the namespace regex including its '#' suffix."""
    rules = ChannelRules(
        [Namespace(name="dm", allow_user_limited_channels=True, channel_regex=r"[a-z]+#[0-9,]+")],
        ChannelOptions(),
    )
    assert rules.resolve("dm:chat#1,2").user_limited == frozenset({"1", "2"})
    assert error_code(rules, "dm:chat") == BAD_REQUEST


def test_builtin_namespaces_are_present_by_default() -> None:
    """from_options provides Parsec's public and private namespaces."""
    rules = ChannelRules.from_options(Options())
    public, private = rules.namespace("public"), rules.namespace("private")
    assert public is not None
    assert public.allow_subscribe_for_client
    assert private is not None
    assert private.require_subscription_token


def test_operator_namespace_replaces_a_builtin_but_keeps_its_grammar() -> None:
    """An operator 'public' namespace replaces the built-in options, not the name rules."""
    custom = Namespace(name="public", join_leave=True)
    rules = ChannelRules.from_options(Options(namespaces=[custom]))
    assert rules.namespace("public") == custom
    assert rules.resolve("public:app.domain").options == custom
    assert error_code(rules, "public:free-text") == BAD_REQUEST
    assert rules.namespace("private") is not None


def test_private_namespace_always_needs_a_token() -> None:
    """Replacing 'private' without require_subscription_token still needs a token."""
    rules = ChannelRules.from_options(Options(namespaces=[Namespace(name="private")]))
    assert rules.resolve("private:app.user.1").token_required is True


def test_from_options_rejects_duplicate_operator_namespaces() -> None:
    """Two operator namespaces with one name fail even when they replace a built-in."""
    namespaces = [Namespace(name="public"), Namespace(name="public")]
    with pytest.raises(ValueError, match="duplicate namespace 'public'"):
        ChannelRules.from_options(Options(namespaces=namespaces))


def test_namespace_lookup_returns_none_for_unknown_names() -> None:
    """namespace() finds configured namespaces only; '' is not a namespace."""
    assert RULES.namespace("news") == OPERATOR_NAMESPACES[0]
    assert RULES.namespace("sport") is None
    assert RULES.namespace("") is None


def test_resolve_returns_the_cached_result_for_a_repeated_channel() -> None:
    """Resolving the same channel twice returns the same result object."""
    rules = ChannelRules.from_options(Options())
    assert rules.resolve("public:a.b") is rules.resolve("public:a.b")


def test_cache_is_bounded_and_results_stay_correct() -> None:
    """With a one-entry cache, an evicted channel resolves again to an equal result."""
    rules = ChannelRules([Namespace(name="news")], ChannelOptions(), cache_size=1)
    first = rules.resolve("news:a")
    other = rules.resolve("news:b")
    again = rules.resolve("news:a")
    assert again == first
    assert again is not first
    assert other.name == "news:b"


def test_cache_never_exceeds_its_size_and_keeps_recent_channels() -> None:
    """Past its size the cache drops its oldest entries, never the newest."""
    rules = ChannelRules([Namespace(name="news")], ChannelOptions(), cache_size=64)
    results = [rules.resolve(f"news:{n}") for n in range(1000)]
    assert len(rules._cache) <= 64
    assert rules.resolve("news:999") is results[-1]
    assert rules.resolve("news:0") == results[0]


def test_errors_are_raised_again_on_every_call() -> None:
    """A rejected channel stays rejected; failures are not turned into results."""
    assert error_code(RULES, "sport:news") == UNKNOWN_CHANNEL
    assert error_code(RULES, "sport:news") == UNKNOWN_CHANNEL


CHANNEL_ALPHABET = "$#:,.-_abnewsdialogpublicrvate0129 \u00e9"
channel_text = st.text() | st.text(alphabet=CHANNEL_ALPHABET, max_size=40)


@given(channel_text)
@example("$private:a.b.c")
@example("dialog:x#1,2")
@example(":")
@example("$")
@example("$:")
def test_resolve_returns_or_raises_102_or_107_for_any_text(channel: str) -> None:
    """resolve() on any string returns a result for that string or raises 102/107 only."""
    outcome = resolve_or_error(RULES, channel)
    if isinstance(outcome, ClientError):
        assert outcome.code in {BAD_REQUEST, UNKNOWN_CHANNEL}
    else:
        assert outcome.name == channel
        assert outcome.token_required or not channel.startswith("$")

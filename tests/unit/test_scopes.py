"""Scopes and the deny-wins authorisation rule."""

from __future__ import annotations

import itertools

import pytest

from parsec.auth.scopes import OPERATOR_SCOPES, VERBS, Scope, authorizes, is_operator
from parsec.errors import ParsecError

CHANNEL = "private:app.jobs.42"


def test_verbs_are_subscribe_publish_manage() -> None:
    """The three verbs, in the manifest's order."""
    assert VERBS == ("subscribe", "publish", "manage")


# -- validation and the wire form ---------------------------------------------------------------


def test_valid_scope_validates() -> None:
    """A parseable pattern with known verbs passes validation."""
    Scope("private:app.**", ("subscribe", "publish")).validate()
    Scope("public:*.news", ("manage",), deny=True).validate()


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (Scope("private:app.**", ("subscribe", "admin")), "unknown verb 'admin'"),
        (Scope("private:app.**", ("Subscribe",)), "unknown verb 'Subscribe'"),
        (Scope("private:app.**", ()), "lists no verb"),
        (Scope("*:app.**", ("subscribe",)), "visibility must be 'public' or 'private'"),
        (Scope("private:**.jobs", ("subscribe",)), "'**' is only allowed as the last segment"),
        (Scope("", ("subscribe",)), "must start with 'public:' or 'private:'"),
    ],
)
def test_invalid_scope_is_an_invalid_argument(scope: Scope, reason: str) -> None:
    """An unknown verb, no verb or a malformed pattern raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        scope.validate()

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert reason in caught.value.message


def test_wire_form_uses_short_keys_and_omits_false_deny() -> None:
    """to_claim gives {pat, v} and adds deny only when it is true."""
    assert Scope("public:**", ("subscribe",)).to_claim() == {"pat": "public:**", "v": ["subscribe"]}
    assert Scope("public:**", ("publish",), deny=True).to_claim() == {
        "pat": "public:**",
        "v": ["publish"],
        "deny": True,
    }


@pytest.mark.parametrize(
    "scope",
    [
        Scope("public:**", ("subscribe",)),
        Scope("private:app.*.*", ("subscribe", "publish", "manage")),
        Scope("public:app.news", ("publish",), deny=True),
    ],
)
def test_wire_form_round_trips(scope: Scope) -> None:
    """from_claim(to_claim()) gives the scope back."""
    assert Scope.from_claim(scope.to_claim()) == scope


def test_from_claim_accepts_explicit_false_deny() -> None:
    """An explicit "deny": false is an allow scope."""
    claim = {"pat": "public:**", "v": ["subscribe"], "deny": False}
    assert Scope.from_claim(claim) == Scope("public:**", ("subscribe",))


@pytest.mark.parametrize(
    ("claim", "reason"),
    [
        ("public:**", "must be an object"),
        (["public:**", ["subscribe"]], "must be an object"),
        ({"v": ["subscribe"]}, "'pat' must be a string"),
        ({"pat": 7, "v": ["subscribe"]}, "'pat' must be a string"),
        ({"pat": "public:**"}, "'v' must be a list of strings"),
        ({"pat": "public:**", "v": "subscribe"}, "'v' must be a list of strings"),
        ({"pat": "public:**", "v": ["subscribe", 1]}, "'v' must be a list of strings"),
        ({"pat": "public:**", "v": ["subscribe"], "deny": "yes"}, "'deny' must be true or false"),
        ({"pat": "public:**", "v": ["subscribe"], "Deny": True}, "unknown keys: Deny"),
        ({"pattern": "public:**", "verbs": ["subscribe"]}, "unknown keys: pattern, verbs"),
        ({"pat": "public:**", "v": ["delete"]}, "unknown verb 'delete'"),
        ({"pat": "public:**", "v": []}, "lists no verb"),
        ({"pat": "public:a..b", "v": ["subscribe"]}, "a segment is empty"),
    ],
)
def test_from_claim_refuses_bad_shapes(claim: object, reason: str) -> None:
    """A claim that is not a valid scope raises PARSEC_INVALID_ARGUMENT, never anything else."""
    with pytest.raises(ParsecError) as caught:
        Scope.from_claim(claim)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
    assert reason in caught.value.message


# -- the authorisation rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_chs", "allowed", "denied"), list(itertools.product([False, True], repeat=3))
)
@pytest.mark.parametrize("verb", VERBS)
def test_deny_wins_truth_table(in_chs: bool, allowed: bool, denied: bool, verb: str) -> None:
    """Allowed exactly when not denied and either listed in chs or granted by a scope."""
    chs = [CHANNEL] if in_chs else ["private:app.jobs.other"]
    scopes = []
    if allowed:
        scopes.append(Scope("private:app.**", (verb,)))
    if denied:
        scopes.append(Scope("private:app.jobs.*", (verb,), deny=True))

    assert authorizes(chs, scopes, CHANNEL, verb) is (not denied and (in_chs or allowed))


@pytest.mark.parametrize("verb", VERBS)
def test_chs_allows_every_verb(verb: str) -> None:
    """An exact channel in chs allows subscribe, publish and manage alike."""
    assert authorizes([CHANNEL], [], CHANNEL, verb)


def test_chs_is_an_exact_match() -> None:
    """chs grants only the very channel listed: not its parent, child or sibling."""
    chs = ["public:app.news.1"]

    assert not authorizes(chs, [], "public:app.news", "subscribe")
    assert not authorizes(chs, [], "public:app.news.1.t", "subscribe")
    assert not authorizes(chs, [], "public:app.news.2", "subscribe")


def test_deny_only_withholds_the_verbs_it_lists() -> None:
    """A deny scope for publish leaves subscribe allowed."""
    scopes = [Scope("private:app.**", ("publish",), deny=True)]

    assert not authorizes([CHANNEL], scopes, CHANNEL, "publish")
    assert authorizes([CHANNEL], scopes, CHANNEL, "subscribe")
    assert authorizes([CHANNEL], scopes, CHANNEL, "manage")


def test_deny_only_withholds_the_channels_it_covers() -> None:
    """A deny scope on one channel leaves the other channels of an allow scope allowed."""
    scopes = [
        Scope("public:app.*", ("subscribe",)),
        Scope("public:app.secret", ("subscribe",), deny=True),
    ]

    assert authorizes([], scopes, "public:app.news", "subscribe")
    assert not authorizes([], scopes, "public:app.secret", "subscribe")


def test_allow_scope_grants_only_its_verbs_and_channels() -> None:
    """An allow scope grants the verbs it lists on the channels it covers, nothing more."""
    scopes = [Scope("public:app.*", ("subscribe",))]

    assert authorizes([], scopes, "public:app.news", "subscribe")
    assert not authorizes([], scopes, "public:app.news", "publish")
    assert not authorizes([], scopes, "public:app.news.1", "subscribe")
    assert not authorizes([], scopes, "public:other.news", "subscribe")


@pytest.mark.parametrize("channel", ["", "public:App.news", "private:app.news", "public:a"])
def test_malformed_channel_fails_closed(channel: str) -> None:
    """A channel that is not a valid name is refused even when chs lists it verbatim."""
    assert not authorizes([channel], list(OPERATOR_SCOPES), channel, "subscribe")


@pytest.mark.parametrize("verb", ["admin", "", "SUBSCRIBE", "read"])
def test_unknown_verb_is_refused(verb: str) -> None:
    """An unknown verb is never allowed, not even on a channel listed in chs."""
    scopes = [Scope("private:**", (verb,))]

    assert not authorizes([CHANNEL], scopes, CHANNEL, verb)


def test_malformed_scopes_can_only_withhold() -> None:
    """A malformed allow scope grants nothing; a malformed deny scope denies everywhere."""
    broken_allow = [Scope("private:app..x", ("subscribe",))]
    broken_deny = [Scope("*:**", ("subscribe",), deny=True)]

    assert not authorizes([], broken_allow, CHANNEL, "subscribe")
    assert not authorizes([CHANNEL], broken_deny, CHANNEL, "subscribe")
    assert authorizes([CHANNEL], broken_deny, CHANNEL, "publish")


# -- operator scopes ----------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["public:app.news", "private:app.jobs.42.done"])
@pytest.mark.parametrize("verb", VERBS)
def test_operator_scopes_allow_everything(channel: str, verb: str) -> None:
    """OPERATOR_SCOPES allow every verb on every valid channel."""
    assert authorizes([], OPERATOR_SCOPES, channel, verb)


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (OPERATOR_SCOPES, True),
        ((Scope("public:**", ("manage",)), Scope("private:**", ("manage",))), True),
        ((*OPERATOR_SCOPES, Scope("private:app.**", ("subscribe",), deny=True)), True),
        ((*OPERATOR_SCOPES, Scope("private:app.**", ("manage",), deny=True)), False),
        ((Scope("public:**", ("manage",)),), False),
        ((Scope("public:**", VERBS), Scope("private:app.**", VERBS)), False),
        ((Scope("public:**", ("subscribe", "publish")), Scope("private:**", VERBS)), False),
        ((), False),
    ],
)
def test_is_operator(scopes: tuple[Scope, ...], expected: bool) -> None:
    """Operator means manage on public:** and private:** with no deny of manage anywhere."""
    assert is_operator(scopes) is expected

"""Who may do what in a channel, decided from its namespace options alone.

These are pure functions: the Session gathers the facts (user, whether the client is
subscribed, whether a valid subscription token came along) and asks here.
"""

from __future__ import annotations

from parsec.engine.channel import ResolvedChannel

__all__ = [
    "explain",
    "explain_subscribe",
    "may_publish",
    "may_read_history",
    "may_read_presence",
    "may_subscribe_without_token",
]


def may_subscribe_without_token(ch: ResolvedChannel, user: str) -> bool:
    """A subscribe with no token: never for private channels; for a user-limited
    channel (``news#42``) when the user is listed; otherwise as the namespace allows."""
    if ch.token_required:
        return False
    if ch.user_limited is not None and user in ch.user_limited:
        return True
    opts = ch.options
    return opts.allow_subscribe_for_client and (bool(user) or opts.allow_subscribe_for_anonymous)


def _allowed(
    for_client: bool, for_subscriber: bool, for_anonymous: bool, user: str, subscribed: bool
) -> bool:
    """``_for_client`` opens the action to every connection, ``_for_subscriber`` to
    subscribers of the channel; anonymous connections also need ``_for_anonymous``."""
    if not user and not for_anonymous:
        return False
    return for_client or (for_subscriber and subscribed)


def may_publish(ch: ResolvedChannel, user: str, subscribed: bool) -> bool:
    o = ch.options
    return _allowed(
        o.allow_publish_for_client,
        o.allow_publish_for_subscriber,
        o.allow_publish_for_anonymous,
        user,
        subscribed,
    )


def may_read_history(ch: ResolvedChannel, user: str, subscribed: bool) -> bool:
    o = ch.options
    return _allowed(
        o.allow_history_for_client,
        o.allow_history_for_subscriber,
        o.allow_history_for_anonymous,
        user,
        subscribed,
    )


def may_read_presence(ch: ResolvedChannel, user: str, subscribed: bool) -> bool:
    o = ch.options
    return _allowed(
        o.allow_presence_for_client,
        o.allow_presence_for_subscriber,
        o.allow_presence_for_anonymous,
        user,
        subscribed,
    )


def explain(ch: ResolvedChannel, action: str, user: str, subscribed: bool) -> str:
    """Why ``action`` (``publish``, ``history`` or ``presence``) is refused, for the
    server log: the namespace options that decide it and the facts they met."""
    o = ch.options
    flags = ", ".join(
        f"allow_{action}_for_{who}={str(getattr(o, f'allow_{action}_for_{who}')).lower()}"
        for who in ("client", "subscriber", "anonymous")
    )
    facts = f"user {user!r}" if user else "anonymous"
    return f"{_label(ch)} has {flags}; {facts}, {'' if subscribed else 'not '}subscribed"


def explain_subscribe(ch: ResolvedChannel, user: str) -> str:
    """Why a subscribe without a token is refused, for the server log."""
    if ch.token_required:
        return (
            "the channel needs a subscription token ($ prefix, private namespace or "
            f"require_subscription_token in {_label(ch)})"
        )
    o = ch.options
    flags = (
        f"allow_subscribe_for_client={str(o.allow_subscribe_for_client).lower()}, "
        f"allow_subscribe_for_anonymous={str(o.allow_subscribe_for_anonymous).lower()}"
    )
    return f"{_label(ch)} has {flags}; {f'user {user!r}' if user else 'anonymous'}, no token"


def _label(ch: ResolvedChannel) -> str:
    return f"namespace {ch.namespace!r}" if ch.namespace else "[without_namespace]"

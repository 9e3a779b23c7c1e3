"""Channel resolution, Centrifugo style (centrifuge-protocol.md §6 and §3.4).

A channel ``[$]<namespace>:<rest>`` takes the options of its namespace; a channel with no
``:``, or with an empty namespace (``:rest``, as in Centrifugo), takes the
``without_namespace`` options. Reserved characters:

- ``$`` as the first character: the channel always needs a subscription token;
- ``:`` the first one (after any ``$``) ends the namespace name;
- ``#`` the users after the last one may subscribe without a token (``news#42,43``), when
  the namespace has ``allow_user_limited_channels``; ``,`` separates those users.

The built-in namespaces ``public`` and ``private`` also enforce Parsec's name grammar
(:mod:`parsec.channels.names`), and ``private`` always needs a subscription token.

Errors are client protocol replies: a name that can never be valid is
``errors.BAD_REQUEST`` (107), a name in a namespace that is not configured is
``errors.UNKNOWN_CHANNEL`` (102, its message naming the namespace). Nothing else is
raised for any input string.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from parsec.channels.names import VISIBILITIES, has_safe_characters, is_valid_name
from parsec.channels.options import Namespace
from parsec.engine.channel import ChannelOptions, ResolvedChannel
from parsec.engine.codes import errors, unknown_channel

if TYPE_CHECKING:
    from parsec.options import Options

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "ChannelRules",
    "ResolvedChannel",
    "validate_namespace_name",
]

PRIVATE_PREFIX: Final = "$"
NAMESPACE_BOUNDARY: Final = ":"
USER_BOUNDARY: Final = "#"
USER_SEPARATOR: Final = ","
PRIVATE_NAMESPACE: Final = "private"
DEFAULT_CACHE_SIZE: Final = 16384
"""How many resolved channels a :class:`ChannelRules` keeps by default (a few MB).
When full, the oldest eighth is dropped in one go: evicting one entry per miss costs
a scan over the dict's deleted slots each time, and a working set just above the size
would then pay it on every resolve."""

_NAMESPACE_NAME: Final = re.compile(r"[-a-zA-Z0-9_]{2,}")


def validate_namespace_name(name: str) -> None:
    """Accept ``name`` as a namespace name only if it matches ``^[-a-zA-Z0-9_]{2,}$``.

    Raises:
        ValueError: naming the offending name.
    """
    if _NAMESPACE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"invalid namespace name {name!r}: use at least 2 of the characters "
            "a-z, A-Z, 0-9, '_', '-'"
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    options: ChannelOptions
    regex: re.Pattern[str] | None


class ChannelRules:
    """Resolves channel names to their namespace and options.

    ``resolve`` is on the subscribe/publish hot path: successful results are cached in a
    bounded dict (oldest evicted first). The cache is unlocked; use an instance from one
    thread (the event loop) at a time.
    """

    def __init__(
        self,
        namespaces: Sequence[Namespace],
        without_namespace: ChannelOptions,
        *,
        max_length: int = 255,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        """Check and index the rules.

        Raises:
            ValueError: a namespace name is invalid or given twice, a ``channel_regex`` does
                not compile, or ``max_length`` / ``cache_size`` is below 1.
        """
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self._max_length = max_length
        self._cache_size = cache_size
        self._cache: dict[str, ResolvedChannel] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._rules: dict[str, _Rule] = {"": _rule(without_namespace, "without_namespace")}
        for namespace in namespaces:
            validate_namespace_name(namespace.name)
            if namespace.name in self._namespaces:
                raise ValueError(f"duplicate namespace {namespace.name!r}")
            self._namespaces[namespace.name] = namespace
            self._rules[namespace.name] = _rule(namespace, f"namespace {namespace.name!r}")

    @classmethod
    def from_options(cls, options: Options) -> ChannelRules:
        """Rules for ``options``: the built-in ``public`` and ``private`` namespaces, each
        replaced by an operator namespace of the same name, plus the operator namespaces.

        Raises:
            ValueError: as :meth:`__init__`.
        """
        # Imported here: parsec.options imports parsec.channels, so a top-level import
        # would be circular.
        from parsec.backends.capabilities import keeps_history
        from parsec.options import builtin_namespaces

        configured = {namespace.name for namespace in options.namespaces}
        builtins = builtin_namespaces(history=keeps_history(options.broker.url))
        namespaces = [ns for ns in builtins if ns.name not in configured]
        namespaces.extend(options.namespaces)
        return cls(
            namespaces,
            options.without_namespace,
            max_length=options.client.channel_max_length,
        )

    def namespace(self, name: str) -> Namespace | None:
        """The namespace called ``name``, or None when there is none."""
        return self._namespaces.get(name)

    def resolve(self, channel: str) -> ResolvedChannel:
        """Resolve ``channel`` to its namespace, options and access facts.

        Raises:
            ClientError: ``errors.BAD_REQUEST`` (107) for an empty or too long name, one
                with a character that is not printable ASCII
                (:func:`parsec.channels.names.has_safe_characters`), a
                ``public``/``private`` name breaking Parsec's grammar, or a name not
                matching the namespace's ``channel_regex``; ``errors.UNKNOWN_CHANNEL``
                (102) for a namespace that is not configured.
        """
        cached = self._cache.get(channel)
        if cached is not None:
            return cached
        resolved = self._resolve(channel)
        cache = self._cache
        if len(cache) >= self._cache_size:
            for oldest in list(itertools.islice(cache, max(1, self._cache_size // 8))):
                del cache[oldest]
        cache[channel] = resolved
        return resolved

    def _resolve(self, channel: str) -> ResolvedChannel:
        if not channel or len(channel) > self._max_length or not has_safe_characters(channel):
            raise errors.BAD_REQUEST
        private = channel.startswith(PRIVATE_PREFIX)
        unprefixed = channel[len(PRIVATE_PREFIX) :] if private else channel
        namespace, boundary, rest = unprefixed.partition(NAMESPACE_BOUNDARY)
        if not boundary:
            namespace, rest = "", channel
        rule = self._rules.get(namespace)
        if rule is None:
            raise unknown_channel(namespace)
        if namespace in VISIBILITIES and not is_valid_name(unprefixed):
            raise errors.BAD_REQUEST
        # Like Centrifugo, the regex sees everything after "<namespace>:", or the whole
        # name (with any "$") when there is no namespace.
        if rule.regex is not None and rule.regex.fullmatch(rest) is None:
            raise errors.BAD_REQUEST
        options = rule.options
        return ResolvedChannel(
            name=channel,
            namespace=namespace,
            options=options,
            user_limited=_users(channel) if options.allow_user_limited_channels else None,
            token_required=(
                private or namespace == PRIVATE_NAMESPACE or options.require_subscription_token
            ),
        )


def _rule(options: ChannelOptions, label: str) -> _Rule:
    """Compile ``options.channel_regex``; ``label`` names the options in the error."""
    if not options.channel_regex:
        return _Rule(options, None)
    try:
        regex = re.compile(options.channel_regex)
    except re.error as exc:
        raise ValueError(
            f"{label}: invalid channel_regex {options.channel_regex!r}: {exc}"
        ) from None
    return _Rule(options, regex)


def _users(channel: str) -> frozenset[str] | None:
    """The non-empty user IDs after the last ``#``, or None when there is no ``#``."""
    _, boundary, users = channel.rpartition(USER_BOUNDARY)
    if not boundary:
        return None
    return frozenset(user for user in users.split(USER_SEPARATOR) if user)

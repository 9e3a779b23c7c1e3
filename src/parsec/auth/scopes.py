"""Token scopes and the authorisation rule (parsec-reference.md §4).

A :class:`Scope` grants (or, with ``deny``, withholds) verbs on the channels a
:class:`~parsec.channels.patterns.ChannelPattern` covers. On the wire a scope is
``{"pat": <pattern>, "v": [<verb>, …]}`` plus ``"deny": true`` for a deny scope.

:func:`authorizes` decides in this order, and fails closed:

1. the channel is not a valid Parsec name, or the verb is unknown: refused;
2. any deny scope that covers the channel and lists the verb: refused (deny wins);
3. the channel is listed exactly in ``chs``: allowed, whatever the verb;
4. any allow scope that covers the channel and lists the verb: allowed;
5. anything else: refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from parsec.channels.names import is_valid_name
from parsec.channels.patterns import ChannelPattern
from parsec.errors import ParsecError

__all__ = [
    "MANAGE",
    "OPERATOR_SCOPES",
    "PUBLISH",
    "SUBSCRIBE",
    "VERBS",
    "Scope",
    "authorizes",
    "is_operator",
]

SUBSCRIBE: Final = "subscribe"
PUBLISH: Final = "publish"
MANAGE: Final = "manage"
VERBS: Final = (SUBSCRIBE, PUBLISH, MANAGE)
"""Every verb a scope may list, in the manifest's order."""

_CLAIM_KEYS: Final = frozenset({"pat", "v", "deny"})
_INVALID: Final = "PARSEC_INVALID_ARGUMENT"


@dataclass(frozen=True, slots=True)
class Scope:
    """Verbs granted (or, with ``deny``, withheld) on the channels ``pattern`` covers.

    Construction does not validate; :meth:`validate` does, and every token issued or
    verified by Parsec carries only validated scopes.
    """

    pattern: str
    verbs: tuple[str, ...]
    deny: bool = False

    def validate(self) -> None:
        """Check the pattern parses, at least one verb is listed and every verb is known.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` saying which rule is broken.
        """
        ChannelPattern.parse(self.pattern)
        if not self.verbs:
            raise ParsecError(_INVALID, f"scope {self.pattern!r} lists no verb")
        for verb in self.verbs:
            if verb not in VERBS:
                raise ParsecError(
                    _INVALID,
                    f"scope {self.pattern!r} has unknown verb {verb!r} (known: {', '.join(VERBS)})",
                )

    def covers(self, channel: str, verb: str) -> bool:
        """Whether ``verb`` is listed and the pattern covers ``channel``.

        A malformed pattern covers every channel when the scope denies and none when it
        allows, so a broken scope can only ever withhold access.
        """
        if verb not in self.verbs:
            return False
        pattern = _compiled(self.pattern)
        if pattern is None:
            return self.deny
        return pattern.matches(channel)

    def to_claim(self) -> dict[str, object]:
        """The wire form: ``{"pat", "v"}``, with ``"deny": true`` only for a deny scope."""
        claim: dict[str, object] = {"pat": self.pattern, "v": list(self.verbs)}
        if self.deny:
            claim["deny"] = True
        return claim

    @classmethod
    def from_claim(cls, obj: object) -> Scope:
        """Parse and validate the wire form.

        Unknown keys are refused rather than ignored: a misspelt ``deny`` must not turn a
        deny scope into an allow scope.

        Raises:
            ParsecError: ``PARSEC_INVALID_ARGUMENT`` when ``obj`` is not a valid scope.
        """
        if not isinstance(obj, dict):
            raise ParsecError(_INVALID, "a scope must be an object with 'pat' and 'v'")
        unknown = sorted(str(key) for key in obj if key not in _CLAIM_KEYS)
        if unknown:
            raise ParsecError(_INVALID, f"a scope has unknown keys: {', '.join(unknown)}")
        pattern, verbs, deny = obj.get("pat"), obj.get("v"), obj.get("deny", False)
        if not isinstance(pattern, str):
            raise ParsecError(_INVALID, "a scope's 'pat' must be a string")
        if not isinstance(verbs, list) or not all(isinstance(verb, str) for verb in verbs):
            raise ParsecError(_INVALID, "a scope's 'v' must be a list of strings")
        if not isinstance(deny, bool):
            raise ParsecError(_INVALID, "a scope's 'deny' must be true or false")
        scope = cls(pattern, tuple(verbs), deny)
        scope.validate()
        return scope


OPERATOR_SCOPES: Final = (Scope("public:**", VERBS), Scope("private:**", VERBS))
"""Every verb on every channel: the scopes of a full operator management token."""

_EVERYTHING: Final = tuple(scope.pattern for scope in OPERATOR_SCOPES)


def authorizes(chs: Sequence[str], scopes: Sequence[Scope], channel: str, verb: str) -> bool:
    """Whether ``verb`` on ``channel`` is allowed by exact channels ``chs`` and ``scopes``.

    Deny wins over everything, ``chs`` allows every verb, and an invalid channel name or an
    unknown verb is refused (see the module docstring for the full order). Never raises.
    """
    if verb not in VERBS or not is_valid_name(channel):
        return False
    if any(scope.deny and scope.covers(channel, verb) for scope in scopes):
        return False
    if channel in chs:
        return True
    return any(not scope.deny and scope.covers(channel, verb) for scope in scopes)


def is_operator(scopes: Sequence[Scope]) -> bool:
    """Whether ``scopes`` allow ``manage`` on every channel: allow scopes listing manage on
    ``public:**`` and ``private:**``, and no deny scope listing manage at all."""
    if any(scope.deny and MANAGE in scope.verbs for scope in scopes):
        return False
    granted = {scope.pattern for scope in scopes if not scope.deny and MANAGE in scope.verbs}
    return all(pattern in granted for pattern in _EVERYTHING)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> ChannelPattern | None:
    """The parsed pattern, or None when malformed; cached, scopes repeat across tokens."""
    try:
        return ChannelPattern.parse(pattern)
    except ParsecError:
        return None

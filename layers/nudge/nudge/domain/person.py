"""Who something is about: a known user, or an anonymous visitor not linked to one yet.

Its text form, ``u:<userId>`` or ``a:<anonymousId>``, is what the table's keys, the fire
messages, the timers' schedules and the email links carry. This module is the only one
that writes or reads that form; everything else holds a ``PersonId``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["InvalidPersonId", "PersonId", "PersonKind"]

PersonKind = Literal["user", "anonymous"]

_PREFIXES: dict[PersonKind, str] = {"user": "u:", "anonymous": "a:"}
_SHOWN_CHARS = 80  # of refused text quoted in an error: enough to recognise it


class InvalidPersonId(ValueError):
    """Text that is not ``u:<userId>`` or ``a:<anonymousId>``."""


# order=True sorts by (kind, value), which is how the text form sorts too ("a:" < "u:"):
# a sorted list of people is in the same order whichever form it was sorted in.
@dataclass(frozen=True, order=True, slots=True)
class PersonId:
    """A user (their userId) or an anonymous visitor (their anonymousId)."""

    kind: PersonKind
    value: str  # the userId or the anonymousId, as the client sent it
    # hash((kind, value)), the hash the dataclass would compute on every call, computed
    # once: people key the backtest's dictionaries, a dozen lookups per event replayed.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _PREFIXES:
            raise InvalidPersonId(f"a person is a user or anonymous, not {self.kind!r}")
        if not isinstance(self.value, str) or not self.value:
            raise InvalidPersonId(f"a person's {self.kind} id must be a non-empty string")
        object.__setattr__(self, "_hash", hash((self.kind, self.value)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[PersonId], tuple[PersonKind, str]]:
        # Rebuilt from kind and value, never with a stored hash: str hashes differ
        # from one process to the next.
        return (PersonId, (self.kind, self.value))

    @classmethod
    def user(cls, user_id: str) -> PersonId:
        return cls("user", user_id)

    @classmethod
    def anonymous(cls, anonymous_id: str) -> PersonId:
        return cls("anonymous", anonymous_id)

    @classmethod
    def of(cls, user_id: str | None, anonymous_id: str | None) -> PersonId:
        """A known user is the person; an anonymous visitor is one until linked."""
        if user_id:
            return cls.user(user_id)
        if anonymous_id:
            return cls.anonymous(anonymous_id)
        raise InvalidPersonId("a person needs a userId or an anonymousId")

    @classmethod
    def parse(cls, text: str) -> PersonId:
        """The person ``text`` names, as ``str(person)`` wrote it (and older items hold)."""
        if not isinstance(text, str):
            raise InvalidPersonId(f"a person id is text, not {type(text).__name__}")
        for kind, prefix in _PREFIXES.items():
            if text.startswith(prefix) and len(text) > len(prefix):
                return cls(kind, text[len(prefix) :])
        shown = text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
        raise InvalidPersonId(
            f"not a person id: {shown!r} (expected u:<userId> or a:<anonymousId>)"
        )

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def user_id(self) -> str | None:
        return self.value if self.is_user else None

    @property
    def anonymous_id(self) -> str | None:
        return self.value if self.is_anonymous else None

    def __str__(self) -> str:
        return f"{_PREFIXES[self.kind]}{self.value}"

    def __repr__(self) -> str:
        return f"PersonId.parse({str(self)!r})"

"""Users as others see them: a username, a display name and an email."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from parsec.db.schema import User

if TYPE_CHECKING:
    from parsec.db import Database

__all__ = ["Profile", "profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    username: str
    name: str | None
    email: str | None


async def profile(db: Database, user_id: uuid.UUID) -> Profile | None:
    """The profile of ``user_id``; None when there is no such user."""
    async with db.session() as session:
        user = await session.get(User, user_id)
        return None if user is None else Profile(user.username, user.name, user.email)

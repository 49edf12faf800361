"""Who is calling: the authenticated `Principal`, its `Role`s, and how external role names map onto them."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["local", "keycloak"]


class Role(enum.Enum):
    """The contract's roles: Download (query, download, own subscriptions), Reporting (metrics), Admin (operations)."""

    DOWNLOAD = "Download"
    REPORTING = "Reporting"
    ADMIN = "Admin"


@dataclass(frozen=True)
class Principal:
    username: str
    roles: frozenset[Role]
    source: Source

    def has_any(self, *roles: Role) -> bool:
        return not roles or bool(self.roles.intersection(roles))


def _default_names() -> dict[str, Role]:
    return {role.value.lower(): role for role in Role}


@dataclass(frozen=True)
class RoleMapping:
    """External role name (compared case-insensitively) -> Role; names not listed are ignored.

    Identity providers add their own roles (Keycloak: `default-roles-<realm>`, `offline_access`, ...), so anything
    unknown is dropped rather than refused.
    """

    names: Mapping[str, Role] = field(default_factory=_default_names)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", {name.lower(): role for name, role in self.names.items()})

    def map(self, names: Iterable[object]) -> frozenset[Role]:
        return frozenset(self.names[n.lower()] for n in names if isinstance(n, str) and n.lower() in self.names)


def parse_roles(text: str) -> frozenset[Role]:
    """Roles as stored in the local users table: comma-separated Role values."""
    return frozenset(Role(part) for part in text.split(",") if part)


def format_roles(roles: Iterable[Role]) -> str:
    return ",".join(sorted(role.value for role in roles))

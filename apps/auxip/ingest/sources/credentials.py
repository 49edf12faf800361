"""Credentials by reference: `env:PREFIX` (PREFIX_USERNAME, PREFIX_PASSWORD, ...), `file:/path` (YAML), `vault:path`.

The configuration only ever names where a secret lives. Locally that is the environment or a file readable by the
service only; in production a Vault KV v2 path read through hvac (the Vault client is created by the caller).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIELDS = ("username", "password", "private_key", "known_hosts", "token", "access_key", "secret_key")


class CredentialsError(ValueError):
    """The reference cannot be resolved; the message names the reference and what is missing."""


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: Path of an OpenSSH private key file (SFTP).
    private_key: str | None = None
    #: Path of a known_hosts file pinning the server's host key (SFTP); none means the system's.
    known_hosts: str | None = None
    token: str | None = field(default=None, repr=False)
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)


NONE = Credentials()

#: Reads a Vault KV secret at a path and returns its data; production wires hvac here.
VaultReader = Callable[[str], Mapping[str, Any]]


def _from_mapping(reference: str, data: Mapping[str, Any]) -> Credentials:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise CredentialsError(f"{reference}: unknown credential fields {', '.join(unknown)}; allowed: {FIELDS}")
    return Credentials(**{key: str(value) for key, value in data.items() if value is not None})


def resolve(
    reference: str | None, environ: Mapping[str, str] | None = None, vault: VaultReader | None = None
) -> Credentials:
    if reference is None:
        return NONE
    kind, _, where = reference.partition(":")
    if kind == "env":
        env = os.environ if environ is None else environ
        values = {name: env.get(f"{where}_{name.upper()}") for name in FIELDS}
        if not any(values.values()):
            raise CredentialsError(f"{reference}: none of {where}_USERNAME, {where}_PASSWORD, ... is set")
        return _from_mapping(reference, values)
    if kind == "file":
        path = Path(where)
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CredentialsError(f"{reference}: cannot read {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CredentialsError(f"{reference}: {path} must hold a mapping of credential fields")
        return _from_mapping(reference, loaded)
    if kind == "vault":
        if vault is None:
            raise CredentialsError(f"{reference}: no Vault client is configured (vault.url)")
        return _from_mapping(reference, vault(where))
    raise CredentialsError(f"{reference}: unknown reference kind {kind!r}; use env:, file: or vault:")

"""The embedded issuer's RS256 signing key: generated at first start, kept in the data dir with mode 0600.

RS256 like Keycloak, so local tokens go through exactly the same validation code (a JWKS and PyJWT). The key is never
part of the repository; delete the file to rotate it (tokens already issued then stop validating).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_FILE = "token-signing-key.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    # RFC 7638 JWK thumbprint: a kid derived from the key itself, stable across restarts.
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _from_pem(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the token signing key file does not hold an RSA private key")
    return SigningKey(key, _thumbprint(key.public_key()))


def load_or_create(data_dir: Path) -> SigningKey:
    """The key in `data_dir`, created (atomically, 0600 from the start) when missing."""
    path = data_dir / KEY_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} is readable by group or others; it must be mode 0600")
        return _from_pem(path.read_bytes())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # O_EXCL: two workers starting together must not both write; the loser reads the winner's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _from_pem(path.read_bytes())
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return SigningKey(key, _thumbprint(key.public_key()))

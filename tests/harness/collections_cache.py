"""Ansible collections without Galaxy: unpack the ones the project uses from the pinned `ansible` wheel on PyPI.

Galaxy is unreachable from CI, but PyPI is, and the community `ansible` package bundles every collection. Installing
that package would add about 470 MB; the wheel (about 54 MB) is downloaded once with a pinned hash and only the
needed collections (about 15 MB) are extracted into `cache_root()/ansible-collections-<version>-<hash>/`.

    python -m auxip_testing.collections_cache   # prints the directory for ANSIBLE_COLLECTIONS_PATH

(The module is not called `collections` on purpose: a file of that name shadows the standard library's
`collections` as soon as tests/harness lands on sys.path, e.g. when a script there is run directly.)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from auxip_testing.cache import cached_dir

#: ansible 12.x is the community package that pairs with ansible-core 2.19 (the newest core for Python 3.11).
ANSIBLE_VERSION = "12.3.0"
WHEEL_NAME = f"ansible-{ANSIBLE_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"
#: Collections the roles, playbooks and molecule use. None of these declares dependencies on other collections
#: (their MANIFEST.json `dependencies` are empty), so no closure has to be computed.
COLLECTIONS: tuple[str, ...] = (
    "ansible.posix",
    "community.crypto",
    "community.general",
    "containers.podman",
    "kubernetes.core",
)


def log(message: str) -> None:
    print(f"collections: {message}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ansible_wheel() -> Path:
    """The pinned `ansible` wheel, downloaded once with pip (hash-checked) and kept in the cache."""

    def download(work: Path) -> None:
        requirement = work / "requirement.txt"
        requirement.write_text(f"ansible=={ANSIBLE_VERSION} --hash=sha256:{WHEEL_SHA256}\n")
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                str(requirement),
                "-d",
                str(work),
            ],
            check=True,
            stdout=sys.stderr,
        )
        requirement.unlink()
        log(f"downloaded {WHEEL_NAME} in {time.monotonic() - started:.1f}s")

    wheel = cached_dir(f"ansible-wheel-{ANSIBLE_VERSION}", download) / WHEEL_NAME
    if _sha256(wheel) != WHEEL_SHA256:
        raise RuntimeError(f"{wheel} does not match the pinned sha256; delete {wheel.parent} and retry")
    return wheel


def collections_path() -> Path:
    """Directory for ANSIBLE_COLLECTIONS_PATH (it holds `ansible_collections/<namespace>/<name>/`)."""
    key = hashlib.sha256(",".join(sorted(COLLECTIONS)).encode()).hexdigest()[:8]

    def extract(work: Path) -> None:
        started = time.monotonic()
        prefixes = tuple(f"ansible_collections/{name.replace('.', '/')}/" for name in COLLECTIONS)
        with zipfile.ZipFile(ansible_wheel()) as wheel:
            members = [m for m in wheel.namelist() if m.startswith(prefixes)]
            missing = [p for p in prefixes if not any(m.startswith(p) for m in members)]
            if missing:
                raise RuntimeError(f"ansible {ANSIBLE_VERSION} has no {', '.join(missing)}")
            wheel.extractall(work, members)
        log(f"extracted {len(COLLECTIONS)} collections ({len(members)} files) in {time.monotonic() - started:.1f}s")

    return cached_dir(f"ansible-collections-{ANSIBLE_VERSION}-{key}", extract)


def main() -> int:
    path = collections_path()
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

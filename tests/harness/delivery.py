"""What every delivery target must do with what a killed process left behind (shared by the target tests)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from auxip.routing.targets.base import Target
from auxip.routing.targets.local import temporary_name

NAME = "S1A_OPER_MPL_ORBPRE_20240101T000000_20240108T000000_0001.EOF"


async def assert_a_redo_replaces_a_dead_attempt(adapter: Target, folder: Path, tmp_path: Path) -> None:
    """A process killed mid-upload left half of the file at its temporary name in `folder` (the directory behind
    the target, as the server sees it): the redone delivery must leave the whole file under its name, and only it."""
    data = os.urandom(150_000)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - the transfer checksum, not security
    staged = tmp_path / "staged-redo"
    staged.write_bytes(data)
    leftover = folder / temporary_name(NAME, md5)
    leftover.write_bytes(data[: len(data) // 2])
    owner = folder.stat()
    os.chown(leftover, owner.st_uid, owner.st_gid)  # written by the server's account, as the dead upload was
    delivered = await adapter.deliver(staged, NAME, md5)
    assert delivered.size == len(data)
    assert sorted(p.name for p in folder.iterdir()) == [NAME]
    assert (folder / NAME).read_bytes() == data

"""Setup the source adapter tests share across protocols."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def server_folder() -> Iterator[Callable[..., Path]]:
    """`server_folder(root)`: a new folder in a session-wide server's directory, so tests neither see nor delete each
    other's files; removed after the test. `mode` for servers whose own user must write there (vsftpd)."""
    made: list[Path] = []

    def fresh(root: Path, prefix: str = "inbox", mode: int | None = None) -> Path:
        folder = root / f"{prefix}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        if mode is not None:
            folder.chmod(mode)
        made.append(folder)
        return folder

    yield fresh
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)

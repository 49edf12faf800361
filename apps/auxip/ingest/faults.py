"""Fault injection for the crash tests: `AUXIP_FAULT_POINT=<stage>.after` kills the process with SIGKILL there.

Only the test suite sets the variable; without it `point` is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

_POINT = os.environ.get("AUXIP_FAULT_POINT")


def point(name: str) -> None:
    if name == _POINT:
        os.kill(os.getpid(), signal.SIGKILL)

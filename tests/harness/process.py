"""Start a server process, wait until it really answers, stop it by PID, and keep its log for failure reports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Every process started through this module, so the pytest plugin can attach their logs to a failing test.
RUNNING: dict[str, ManagedProcess] = {}


class ServiceStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check` until it returns True; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ServiceStartError:
            raise  # the process died: waiting longer cannot help
        except Exception as exc:  # readiness probes fail in many ways while a server boots
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(
        f"{what} not ready after {timeout:.0f}s" + (f" (last error: {last_error!r})" if last_error else "")
    )


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Field 4 is the parent PID; split after the last ")" because the command name may contain spaces.
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children_by_parent(), list[int](), [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def daemon_cpu_seconds(pid_file: Path) -> float:
    """User + system time of the daemon in `pid_file` and of the children it has reaped (sshd forks one per
    connection), for benchmarks that print a server's CPU beside their own."""
    pid = int(pid_file.read_text().strip())
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def terminate_descendants(pid: int, grace: float = 5.0) -> None:
    """SIGTERM (then SIGKILL) every descendant of `pid`.

    sshd and vsftpd call setsid() in each per-connection child, so those escape the listener's process group and
    ManagedProcess.stop; a connection a test forgot to close would otherwise outlive the server.
    """
    pids = descendants(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for child in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)
        deadline = time.monotonic() + grace
        while (pids := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids:
            return


@dataclass
class ManagedProcess:
    """One server process in its own process group, logging to `log_path`."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, **(self.env or {})}
        self.popen = subprocess.Popen(
            list(self.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.cwd,
            user=self.user,
            start_new_session=True,
        )
        log.close()
        RUNNING[self.name] = self
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, check: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait for `check`; fail early with the log if the process exits first."""

        def ready() -> bool:
            if not self.alive():
                code = self.popen.returncode if self.popen else None
                raise ServiceStartError(f"{self.name} exited with {code} before it was ready:\n{self.log_tail()}")
            return check()

        try:
            wait_until(ready, timeout, self.name)
        except ServiceStartError:
            raise
        except TimeoutError as exc:
            self.stop()
            raise ServiceStartError(f"{exc}\n--- {self.log_path} ---\n{self.log_tail()}") from exc

    def stop(self, grace: float = 10.0) -> None:
        """End per-connection children, then SIGTERM the process group and SIGKILL what is left after `grace`."""
        RUNNING.pop(self.name, None)
        if self.popen is None or self.popen.poll() is not None:
            return
        terminate_descendants(self.popen.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


@contextlib.contextmanager
def running(process: ManagedProcess, check: Callable[[], bool], timeout: float = 30.0) -> Iterator[ManagedProcess]:
    """Start `process`, wait for `check`, and always stop it on exit."""
    process.start()
    try:
        process.wait_ready(check, timeout)
        yield process
    finally:
        process.stop()


def require_binary(name: str, package: str, purpose: str) -> str:
    """The path of `name`, or an error that says which Debian package to install (tests fail, never skip)."""
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: {purpose} needs it; install the Debian package `{package}`")
    return found


@contextlib.contextmanager
def scratch_dir(prefix: str, given: Path | None = None) -> Iterator[Path]:
    """The caller's directory (kept, e.g. pytest's tmp_path for post-mortem logs), else a temp dir removed on exit."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    created = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield created
    finally:
        shutil.rmtree(created, ignore_errors=True)

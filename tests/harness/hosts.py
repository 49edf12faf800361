"""pytest plugin: podman containers running systemd as PID 1, used as Ansible targets and testinfra hosts.

Fixtures (all session-scoped):

* ``test_hosts`` - factory: ``hosts = test_hosts(["node1", "node2"])`` boots the named hosts (or reuses the ones this
  session already booted) and returns a :class:`TestHosts` with ``.names``, ``.inventory_path``, ``.testinfra(name)``,
  ``.container(name)`` and ``.ansible(...)`` / ``.ansible_playbook(...)`` helpers.
* ``ansible_collections_path`` - directory for ANSIBLE_COLLECTIONS_PATH (collections unpacked from the PyPI wheel).
* ``ansible_env`` - environment for running the venv's ansible/molecule as subprocesses.
* ``test_host_image`` - reference of the locally built Debian 12 systemd image.

Hosts are reached only through ``podman exec`` (Ansible ``containers.podman.podman``, testinfra ``podman://``), so no
SSH keys or IP traffic are involved. Container names are ``auxip-th-<pid>-<name>`` so parallel sessions (xdist
workers, two CI jobs) never collide; the hostname inside is the plain ``<name>`` so it equals ``inventory_hostname``.
Every container is removed at session end, including after failures; containers left by a killed session are
removed at the start of the next one (found by label, their owner pid no longer running).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from auxip_testing import collections_cache, host_image
from auxip_testing.process import wait_until

BOOT_TIMEOUT = 120.0
#: `systemctl is-system-running --wait` results after which the host will not become usable.
_BROKEN_STATES = ("stopping", "offline", "maintenance")
LABEL = "org.auxip.testhost.session"
#: The directory of the interpreter running pytest: the venv's bin, where ansible, ansible-playbook and molecule live.
VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO_ROOT / "ansible"

#: container name -> logical name of every host this process booted and has not removed yet.
BOOTED: dict[str, str] = {}


def _log(message: str) -> None:
    print(f"[hosts] {message}", file=sys.stderr, flush=True)


def _podman(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_hosts() -> None:
    """Remove test hosts whose owning pytest process is gone (a session killed before its teardown ran)."""
    listing = _podman(
        "ps", "-a", "--filter", f"label={LABEL}", "--format", f'{{{{.Names}}}} {{{{index .Labels "{LABEL}"}}}}'
    )
    stale = []
    for line in listing.stdout.splitlines():
        name, _, owner = line.partition(" ")
        if owner.isdigit() and int(owner) != os.getpid() and not _pid_alive(int(owner)):
            stale.append(name)
    if stale:
        _log(f"removing test hosts left by dead sessions: {', '.join(stale)}")
        _podman("rm", "--force", "--ignore", "--time", "0", *stale, check=False)


def ansible_environment(collections: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the venv's ansible tools: collections from the cache, the repo's ansible.cfg, no Galaxy."""
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}:/usr/sbin:/sbin",
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            # Keeps ansible from writing retry files and facts caches into the work tree.
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "PY_COLORS": "0",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class TestHosts:
    """A set of booted hosts and an inventory that names exactly them."""

    __test__ = False  # not a test class, despite the name

    names: list[str]
    inventory_path: Path
    image: str
    containers: dict[str, str]
    env: dict[str, str]
    _testinfra: dict[str, Any] = field(default_factory=dict, repr=False)

    def container(self, name: str) -> str:
        return self.containers[name]

    def testinfra(self, name: str) -> Any:
        """A testinfra Host connected through `podman exec` (fast: about 3 s for a small suite)."""
        import testinfra

        if name not in self._testinfra:
            self._testinfra[name] = testinfra.get_host(f"podman://{self.containers[name]}")
        return self._testinfra[name]

    def exec(
        self, name: str, *argv: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return _podman("exec", self.containers[name], *argv, check=check, timeout=timeout)

    def ansible(self, pattern: str, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Ad-hoc `ansible` from the venv against this inventory: `.ansible("all", "-m", "ansible.builtin.ping")`."""
        return self._run([str(VENV_BIN / "ansible"), "-i", str(self.inventory_path), pattern, *args], timeout)

    def ansible_playbook(
        self, playbook: Path | str, *args: str, timeout: float = 900.0
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory_path), str(playbook), *args], timeout
        )

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False, cwd=ANSIBLE_DIR
        )


def _write_inventory(path: Path, containers: Mapping[str, str], groups: Mapping[str, Sequence[str]]) -> None:
    lines = ["# Written by auxip_testing.hosts: logical host names, reached by `podman exec` into the container.", ""]
    lines.append("[test_hosts]")
    lines += [f"{name} ansible_host={container}" for name, container in containers.items()]
    for group, members in groups.items():
        lines += ["", f"[{group}]", *members]
    lines += [
        "",
        "[all:vars]",
        "ansible_connection=containers.podman.podman",
        "ansible_python_interpreter=/usr/bin/python3",
        "ansible_user=root",
        "",
    ]
    path.write_text("\n".join(lines))


class HostPool:
    """Boots hosts on demand for the whole session and removes all of them at the end."""

    def __init__(self, image: str, workdir: Path, env: dict[str, str]) -> None:
        self.image = image
        self.workdir = workdir
        self.env = env
        self.prefix = f"auxip-th-{os.getpid()}-"
        self.booted: dict[str, str] = {}  # logical name -> container name
        self._lock = threading.Lock()
        self._inventories = 0

    def _boot(self, names: Sequence[str]) -> None:
        started = time.monotonic()
        for name in names:
            container = self.prefix + name
            # Registered before `podman run` returns, so a run that fails half-way is still removed at teardown.
            BOOTED[container] = name
            self.booted[name] = container
            result = _podman(
                "run", "--detach", "--name", container, "--hostname", name,
                "--label", f"{LABEL}={os.getpid()}",
                # crun (podman's usual default) fails on this machine's hybrid cgroups; runc works.
                "--runtime", "runc",
                "--systemd=always",
                # The image is always local (built by auxip_testing.host_image); never try a registry.
                "--pull=never",
                self.image, "/sbin/init",
                check=False,
            )  # fmt: skip
            if result.returncode != 0:
                self._remove([self.booted.pop(n) for n in names if n in self.booted])
                raise RuntimeError(
                    f"podman run for test host {name} failed ({result.returncode}): {result.stderr.strip()}\n"
                    "If this mentions ulimits or crun, run 'bash tests/harness/podman_setup.sh' first."
                )
        # All containers boot in parallel; waiting for them one after the other costs nothing extra.
        try:
            for name in names:
                self._wait_running(name, started)
        except BaseException:
            # Drop the hosts of this call now, so a later call for the same names boots them afresh.
            self._remove([self.booted.pop(name) for name in names])
            raise
        _log(f"booted {', '.join(names)} in {time.monotonic() - started:.1f}s")

    def _wait_running(self, name: str, started: float) -> None:
        container = self.booted[name]
        state: list[str] = []

        def running() -> bool:
            remaining = max(1.0, BOOT_TIMEOUT - (time.monotonic() - started))
            # `--wait` blocks until boot finishes; it fails fast (and is retried) while systemd's bus is not up yet.
            result = _podman(
                "exec", container, "systemctl", "is-system-running", "--wait", check=False, timeout=remaining
            )
            state[:] = [result.stdout.strip() or result.stderr.strip()]
            # Final states end the wait at once (wait_until would retry a raised error until the timeout).
            return state[0] in ("running", "degraded", *_BROKEN_STATES)

        try:
            wait_until(running, BOOT_TIMEOUT, f"systemd in test host {name} ({container})", interval=0.5)
            if state[0] in _BROKEN_STATES:
                raise RuntimeError(f"systemd in {container} is {state[0]}")
        except (TimeoutError, RuntimeError, subprocess.TimeoutExpired) as exc:
            logs = _podman("logs", "--tail", "40", container, check=False)
            raise RuntimeError(
                f"{exc}; last state {state}\n--- podman logs {container} ---\n{logs.stdout}{logs.stderr}"
            ) from exc
        if state[0] == "degraded":
            failed = _podman("exec", container, "systemctl", "--failed", "--no-legend", "--plain", check=False)
            _log(f"{name} is degraded; failed units: {failed.stdout.strip() or '(none listed)'}")

    def hosts(self, names: Iterable[str], groups: Mapping[str, Sequence[str]] | None = None) -> TestHosts:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            raise ValueError("test_hosts() needs at least one host name")
        for name in wanted:
            # The name becomes a hostname and an inventory entry: keep it to what both accept.
            if not name.replace("-", "").isalnum() or not name[0].isalpha():
                raise ValueError(f"invalid test host name {name!r}: use letters, digits and '-'")
        unknown = {m for members in (groups or {}).values() for m in members} - set(wanted)
        if unknown:
            raise ValueError(f"groups name hosts that were not requested: {sorted(unknown)}")
        with self._lock:
            missing = [name for name in wanted if name not in self.booted]
            if missing:
                self._boot(missing)
            self._inventories += 1
            inventory = self.workdir / f"inventory-{self._inventories}.ini"
            containers = {name: self.booted[name] for name in wanted}
            _write_inventory(inventory, containers, groups or {})
        return TestHosts(names=wanted, inventory_path=inventory, image=self.image, containers=containers, env=self.env)

    def remove_all(self) -> None:
        containers = list(self.booted.values())
        self.booted.clear()
        self._remove(containers)

    @staticmethod
    def _remove(containers: list[str]) -> None:
        if not containers:
            return
        started = time.monotonic()
        # --time 0: these hosts are thrown away, so there is no point waiting for a clean systemd shutdown.
        result = _podman("rm", "--force", "--ignore", "--time", "0", *containers, check=False, timeout=300)
        for container in containers:
            BOOTED.pop(container, None)
        if result.returncode != 0:
            _log(f"podman rm failed ({result.returncode}): {result.stderr.strip()}")
        else:
            _log(f"removed {len(containers)} test hosts in {time.monotonic() - started:.1f}s")


def _require_podman() -> None:
    """Fail, never skip: a machine without podman must not pass the host tests silently."""
    problem = None
    try:
        host_image.require_tools()
    except RuntimeError as exc:
        problem = str(exc)
    if problem:  # outside the except block, so the report shows only the message
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def test_host_image() -> str:
    _require_podman()
    started = time.monotonic()
    image = host_image.ensure_image()
    _log(f"image {image} ready in {time.monotonic() - started:.1f}s")
    return image


@pytest.fixture(scope="session")
def ansible_collections_path() -> Path:
    return collections_cache.collections_path()


@pytest.fixture(scope="session")
def ansible_env(ansible_collections_path: Path, test_host_image: str) -> dict[str, str]:
    # The molecule scenarios read the image reference from AUXIP_TESTHOST_IMAGE.
    return ansible_environment(ansible_collections_path, {"AUXIP_TESTHOST_IMAGE": test_host_image})


@pytest.fixture(scope="session")
def test_hosts(
    test_host_image: str, ansible_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., TestHosts]]:
    remove_stale_hosts()
    pool = HostPool(test_host_image, tmp_path_factory.mktemp("test-hosts"), ansible_env)
    try:
        yield pool.hosts
    finally:
        pool.remove_all()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hosts: boots podman systemd test hosts")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failing test, attach each booted host's failed units and journal tail to the report."""
    report = yield
    if report.failed and report.when == "call" and BOOTED:
        for container, name in sorted(BOOTED.items()):
            try:
                failed = _podman(
                    "exec", container, "systemctl", "--failed", "--no-legend", "--plain", check=False, timeout=30
                )
                journal = _podman("exec", container, "journalctl", "-n", "30", "--no-pager", check=False, timeout=30)
                text = (
                    f"failed units:\n{failed.stdout or failed.stderr}\n"
                    f"journal tail:\n{journal.stdout or journal.stderr}"
                )
            except (OSError, subprocess.TimeoutExpired) as exc:  # diagnostics must never mask the real failure
                text = f"(could not collect: {exc!r})"
            report.sections.append((f"test host {name} ({container})", text))
    return report

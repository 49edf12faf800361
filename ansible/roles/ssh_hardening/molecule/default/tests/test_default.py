"""Checks of the ssh_hardening role on the molecule instances, through `podman exec` (testinfra's podman backend).

The effective server configuration is read with `sshd -T` and compared value by value with the role's defaults;
logins over loopback prove that the hardened server and client still talk to each other, that only public keys are
accepted, and that ProxyJump works on the bastion instance (group `bastion`) and nowhere else.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.molecule_checks import hosts_of, molecule_inventory, podman_hosts

ROLE_DIR = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text())
TEST_USER = "auxiptest"
KEY = "/root/.ssh/auxiptest_ed25519"
SSH_OPTIONS = (
    f"-i {KEY} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10"
)


def _group_hosts(groups: dict[str, Any], wanted: str) -> list[str]:
    """Members of group `wanted`, found at the top level (molecule's layout) or nested as children."""
    names: list[str] = []
    for name, group in groups.items():
        names += hosts_of(group or {}) if name == wanted else _group_hosts((group or {}).get("children") or {}, wanted)
    return names


INVENTORY = molecule_inventory()
BASTIONS = set(_group_hosts(INVENTORY, "bastion"))
testinfra_hosts = podman_hosts()


def _is_bastion(host: Any) -> bool:
    return host.backend.name in BASTIONS


def test_scenario_has_one_plain_host_and_one_bastion() -> None:
    assert len(BASTIONS) == 1
    assert len(testinfra_hosts) == 2


@functools.cache
def _sshd_config(container: str) -> dict[str, list[str]]:
    import testinfra

    result = testinfra.get_host(f"podman://{container}").run("/usr/sbin/sshd -T")
    assert result.rc == 0, result.stderr
    config: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key, []).append(value)
    return config


def sshd_t(host: Any, key: str) -> str:
    """The single effective value of a server directive (lower-case key, as `sshd -T` prints it)."""
    values = _sshd_config(host.backend.name)[key]
    assert len(values) == 1, f"{key} has several values: {values}"
    return values[0]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("pubkeyauthentication", "yes"),
        ("permitemptypasswords", "no"),
        ("permitrootlogin", "no"),
        ("authenticationmethods", "publickey"),
        ("hostbasedauthentication", "no"),
        ("maxauthtries", str(DEFAULTS["ssh_hardening_max_auth_tries"])),
        ("logingracetime", "30"),
        ("usepam", "yes"),
        ("strictmodes", "yes"),
    ],
)
def test_ssh02_authentication_keys_only(host: Any, key: str, expected: str) -> None:
    assert sshd_t(host, key) == expected


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("ciphers", "ssh_hardening_ciphers"),
        ("kexalgorithms", "ssh_hardening_kex"),
        ("macs", "ssh_hardening_macs"),
        ("hostkeyalgorithms", "ssh_hardening_host_key_algorithms"),
    ],
)
def test_ssh03_algorithms_exactly_the_configured_lists(host: Any, key: str, variable: str) -> None:
    # OpenSSH 9.2 (Debian 12) supports every configured algorithm, so nothing may have been filtered out.
    assert sshd_t(host, key) == ",".join(DEFAULTS[variable])


def test_ssh03_crypto_is_modern(host: Any) -> None:
    assert all(mac.endswith("-etm@openssh.com") for mac in sshd_t(host, "macs").split(","))
    assert sshd_t(host, "kexalgorithms").split(",")[0] == "sntrup761x25519-sha512@openssh.com"
    weak = ("cbc", "sha1", "nistp", "ssh-rsa", "ssh-dss", "3des", "arcfour")
    for key in ("ciphers", "kexalgorithms", "macs", "hostkeyalgorithms"):
        for algorithm in sshd_t(host, key).split(","):
            assert not any(w in algorithm for w in weak), algorithm


def test_ssh04_host_keys_ed25519_and_rsa_only(host: Any) -> None:
    keys = sorted(host.run("ls /etc/ssh/").stdout.split())
    host_keys = [k for k in keys if k.startswith("ssh_host_")]
    assert host_keys == [
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
        "ssh_host_rsa_key",
        "ssh_host_rsa_key.pub",
    ]
    assert _sshd_config(host.backend.name)["hostkey"] == ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]
    for name in ("ssh_host_ed25519_key", "ssh_host_rsa_key"):
        key = host.file(f"/etc/ssh/{name}")
        assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    bits = int(host.check_output("ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub").split()[0])
    assert bits >= 3072


def test_ssh05_moduli_at_least_3072_bits(host: Any) -> None:
    sizes = [int(s) for s in host.check_output("awk '!/^#/ {print $5}' /etc/ssh/moduli").split()]
    assert sizes, "no modulus left in /etc/ssh/moduli"
    assert min(sizes) >= 3071
    # The 2048-bit groups of Debian's file were there before the role ran.
    assert 2047 not in sizes


def test_ssh06_forwarding(host: Any) -> None:
    expected_tcp = DEFAULTS["ssh_hardening_bastion_tcp_forwarding"] if _is_bastion(host) else "no"
    assert sshd_t(host, "allowtcpforwarding") == expected_tcp
    assert sshd_t(host, "x11forwarding") == "no"
    assert sshd_t(host, "allowagentforwarding") == "no"
    assert sshd_t(host, "permittunnel") == "no"
    assert sshd_t(host, "gatewayports") == "no"
    assert sshd_t(host, "allowstreamlocalforwarding") == "no"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("clientaliveinterval", "300"),
        ("clientalivecountmax", "2"),
        ("loglevel", "VERBOSE"),
        ("banner", "/etc/issue.net"),
        ("compression", "no"),
        ("usedns", "no"),
        ("printlastlog", "yes"),
        ("permituserenvironment", "no"),
        ("maxsessions", str(DEFAULTS["ssh_hardening_max_sessions"])),
        ("maxstartups", DEFAULTS["ssh_hardening_max_startups"]),
    ],
)
def test_ssh07_session(host: Any, key: str, expected: str) -> None:
    assert sshd_t(host, key) == expected


def test_ssh07_no_allowgroups_by_default(host: Any) -> None:
    assert "allowgroups" not in _sshd_config(host.backend.name)


def test_ssh08_sshd_config_file(host: Any) -> None:
    config = host.file("/etc/ssh/sshd_config")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)
    assert "Ansible managed" in config.content_string
    # Drop-ins are not read by default: nothing in sshd_config.d can loosen the settings.
    assert "Include" not in config.content_string
    assert host.run("/usr/sbin/sshd -t").rc == 0


def test_ssh09_service_enabled_and_running(host: Any) -> None:
    service = host.service("ssh")
    assert service.is_enabled
    assert service.is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_ssh10_client_config(host: Any) -> None:
    effective = dict(line.partition(" ")[::2] for line in host.check_output("ssh -G localhost").splitlines())
    assert effective["ciphers"] == ",".join(DEFAULTS["ssh_hardening_ciphers"])
    assert effective["macs"] == ",".join(DEFAULTS["ssh_hardening_macs"])
    assert effective["kexalgorithms"] == ",".join(DEFAULTS["ssh_hardening_kex"])
    assert effective["passwordauthentication"] == "no"
    assert effective["forwardagent"] == "no"
    assert effective["forwardx11"] == "no"
    assert effective["hashknownhosts"] == "yes"


@pytest.fixture
def login_user(host: Any) -> str:
    """An unprivileged user whose authorized key is root's test key (made on first use; verify runs last)."""
    script = f"""
set -e
id {TEST_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/sh {TEST_USER}
mkdir -p -m 700 /root/.ssh
test -f {KEY} || ssh-keygen -q -t ed25519 -N '' -f {KEY}
install -d -m 700 -o {TEST_USER} -g {TEST_USER} /home/{TEST_USER}/.ssh
install -m 600 -o {TEST_USER} -g {TEST_USER} {KEY}.pub /home/{TEST_USER}/.ssh/authorized_keys
"""
    result = host.run(f"sh -c {shlex.quote(script)}")
    assert result.rc == 0, result.stderr
    return TEST_USER


def test_key_login_works_with_the_hardened_client_and_server(host: Any, login_user: str) -> None:
    result = host.run(f"ssh {SSH_OPTIONS} {login_user}@127.0.0.1 id -un")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == login_user


def test_only_publickey_is_offered(host: Any, login_user: str) -> None:
    result = host.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o PubkeyAuthentication=no -o PasswordAuthentication=yes {login_user}@127.0.0.1 true"
    )
    assert result.rc == 255
    assert "Permission denied (publickey)" in result.stderr


def test_root_login_refused(host: Any, login_user: str) -> None:
    host.run(f"install -m 600 {KEY}.pub /root/.ssh/authorized_keys")
    result = host.run(f"ssh {SSH_OPTIONS} root@127.0.0.1 true")
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_proxyjump_only_on_the_bastion(host: Any, login_user: str) -> None:
    # What `ssh -J` does, spelled out so that the jump connection gets the same options: a direct-tcpip channel.
    jump = f"ssh {SSH_OPTIONS} -W %h:%p {login_user}@127.0.0.1"
    result = host.run(f"ssh {SSH_OPTIONS} -o ProxyCommand={shlex.quote(jump)} {login_user}@127.0.0.1 echo through")
    if _is_bastion(host):
        assert result.rc == 0, result.stderr
        assert result.stdout.strip() == "through"
    else:
        assert result.rc == 255
        assert "administratively prohibited" in result.stderr

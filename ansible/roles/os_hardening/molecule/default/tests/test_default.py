"""Checks of the os_hardening role on the molecule instance, through `podman exec` (testinfra's podman backend).

The instance is a container: the kernel-facing steps (sysctl apply, audit rules load, module loading, AppArmor
profiles) were skipped by the role, so those areas are verified by the files they write and by tools that read the
files without the kernel (`modprobe -c`, augenrules' merged audit.rules). Behaviour that needs no kernel is
exercised for real: PAM refuses a weak password, login shells get the umask and no core limit, the journal reaches
rsyslog's files.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip_testing.molecule_checks import needs_vm, podman_hosts, root_file, settings, vm_only  # noqa: F401 (vm_only: a fixture, found by name)

ROLE_DIR = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text())
TEST_USER = "auxiposh"
# A throw-away account of the test container; random, so that a rerun of verify is not refused by pam_pwhistory.
STRONG_PASSWORD = f"Vq7#kLp2!xZr9@{secrets.token_hex(4)}"


testinfra_hosts = podman_hosts()


@pytest.fixture(scope="module")
def test_user(host: Any) -> str:
    """An ordinary account with a password (made on first use)."""
    if not host.user(TEST_USER).exists:
        host.check_output(f"useradd --create-home --shell /bin/bash {TEST_USER}")
    return TEST_USER


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("PASS_MAX_DAYS", str(DEFAULTS["os_hardening_pass_max_days"])),
        ("PASS_MIN_DAYS", str(DEFAULTS["os_hardening_pass_min_days"])),
        ("PASS_WARN_AGE", str(DEFAULTS["os_hardening_pass_warn_age"])),
        ("ENCRYPT_METHOD", "YESCRYPT"),
        ("YESCRYPT_COST_FACTOR", str(DEFAULTS["os_hardening_yescrypt_cost_factor"])),
        ("UMASK", "027"),
        ("HOME_MODE", "0700"),
        ("LOG_OK_LOGINS", "yes"),
    ],
)
def test_os01_login_defs(host: Any, key: str, expected: str) -> None:
    assert settings(host, "/etc/login.defs")[key] == expected


def test_os01_new_accounts_get_aging_and_a_private_home(host: Any, test_user: str) -> None:
    aging = host.check_output(f"chage -l {test_user}")
    assert re.search(
        rf"Maximum number of days between password change\s*:\s*{DEFAULTS['os_hardening_pass_max_days']}", aging
    )
    assert host.file(f"/home/{test_user}").mode == 0o700


def _stack(host: Any, name: str) -> list[str]:
    """The module lines of a PAM stack, in order, comments left out."""
    return [line for line in host.file(f"/etc/pam.d/{name}").content_string.splitlines() if line and line[0] != "#"]


def _position(stack: list[str], pattern: str) -> int:
    matches = [i for i, line in enumerate(stack) if re.search(pattern, line)]
    assert len(matches) == 1, f"{pattern}: {stack}"
    return matches[0]


def test_os02_pam_stacks_order(host: Any) -> None:
    auth = _stack(host, "common-auth")
    # Locked accounts are refused before the password check; a failure is counted right after it.
    assert _position(auth, r"pam_faillock\.so preauth") < _position(auth, r"pam_unix\.so")
    assert _position(auth, r"pam_unix\.so") < _position(auth, r"die\]\s+pam_faillock\.so authfail")
    assert _position(auth, r"pam_faillock\.so authfail") < _position(auth, r"pam_deny\.so")
    password = _stack(host, "common-password")
    assert _position(password, r"pam_pwquality\.so") < _position(password, r"pam_pwhistory\.so remember=5 ")
    assert _position(password, r"pam_pwhistory\.so") < _position(password, r"pam_unix\.so")
    assert _position(_stack(host, "common-account"), r"^account\s+required\s+pam_faillock\.so") >= 0


def test_os02_pwquality_and_faillock_settings(host: Any) -> None:
    quality = settings(host, "/etc/security/pwquality.conf", r"\s*=\s*")
    assert quality["minlen"] == "14"
    assert quality["minclass"] == "4"
    assert "enforce_for_root" in quality
    lockout = settings(host, "/etc/security/faillock.conf", r"\s*=\s*")
    assert (lockout["deny"], lockout["unlock_time"], lockout["fail_interval"]) == ("5", "900", "900")


def test_os02_weak_password_refused_strong_accepted(host: Any, test_user: str) -> None:
    weak = host.run(f"echo '{test_user}:abc12' | chpasswd")
    assert weak.rc != 0
    assert "BAD PASSWORD" in weak.stderr
    no_classes = host.run(f"echo '{test_user}:alllowercaselettersonly' | chpasswd")
    assert no_classes.rc != 0
    strong = host.run(f"echo '{test_user}:{STRONG_PASSWORD}' | chpasswd")
    assert strong.rc == 0, strong.stderr
    assert host.check_output(f"passwd -S {test_user}").split()[1] == "P"


def test_os02_password_reuse_refused(host: Any, test_user: str) -> None:
    again = host.run(f"echo '{test_user}:{STRONG_PASSWORD}' | chpasswd")
    assert again.rc != 0
    assert "already used" in again.stderr


def test_os03_login_shells_get_umask_and_timeout(host: Any, test_user: str) -> None:
    assert host.check_output(f"su - {test_user} -c umask") == "0027"
    assert host.check_output(f"su - {test_user} -c 'echo $TMOUT'") == "900"
    # readonly: a user cannot switch the idle timeout off.
    assert host.run(f"su - {test_user} -c 'TMOUT=0'").rc != 0
    root_file(host, "/etc/profile.d/os-hardening.sh", 0o644)


def test_os04_fstab_mount_options(host: Any) -> None:
    entries = {
        f[1]: f for f in (line.split() for line in host.file("/etc/fstab").content_string.splitlines()) if len(f) >= 4
    }
    assert entries["/dev/shm"][2] == "tmpfs"
    assert set(entries["/dev/shm"][3].split(",")) >= {"nodev", "nosuid", "noexec"}
    assert entries["/tmp"][2] == "tmpfs"
    assert set(entries["/tmp"][3].split(",")) >= {"nodev", "nosuid", "mode=1777"}
    assert "noexec" not in entries["/tmp"][3].split(",")


def test_os05_modules_blacklisted(host: Any) -> None:
    # modprobe -c prints the configuration modprobe would apply; it reads modprobe.d without the kernel.
    config = host.check_output("modprobe -c").splitlines()
    for name in DEFAULTS["os_hardening_blacklisted_filesystems"] + DEFAULTS["os_hardening_blacklisted_modules"]:
        # modprobe spells module names with underscores (n-hdlc is n_hdlc).
        module = name.replace("-", "_")
        assert f"install {module} {DEFAULTS['os_hardening_modprobe_install_command']}" in config, module
        assert f"blacklist {module}" in config, module
    for module in ("overlay", "br_netfilter", "squashfs", "sctp"):
        assert f"blacklist {module}" not in config


def test_os05_kubernetes_modules_loaded_at_boot(host: Any) -> None:
    # Loading needs a VM; the file systemd-modules-load reads at boot does not.
    lines = host.file("/etc/modules-load.d/os-hardening-kubernetes.conf").content_string.splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["overlay", "br_netfilter"]


def _sysctl_file(host: Any) -> dict[str, str]:
    return settings(host, DEFAULTS["os_hardening_sysctl_file"], r"\s*=\s*")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # Kubernetes node: routing and bridge netfilter on, kubelet's --protect-kernel-defaults values.
        ("net.ipv4.ip_forward", "1"),
        ("-net.bridge.bridge-nf-call-iptables", "1"),
        ("-net.bridge.bridge-nf-call-ip6tables", "1"),
        ("vm.overcommit_memory", "1"),
        ("vm.panic_on_oom", "0"),
        ("kernel.panic", "10"),
        ("kernel.panic_on_oops", "1"),
        ("kernel.keys.root_maxkeys", "1000000"),
        ("kernel.keys.root_maxbytes", "25000000"),
        # Hardening.
        ("kernel.kptr_restrict", "2"),
        ("kernel.dmesg_restrict", "1"),
        ("-kernel.yama.ptrace_scope", "1"),
        ("kernel.unprivileged_bpf_disabled", "1"),
        ("net.ipv4.conf.all.rp_filter", "1"),
        ("net.ipv4.conf.all.accept_redirects", "0"),
        ("net.ipv4.conf.all.send_redirects", "0"),
        ("net.ipv4.tcp_syncookies", "1"),
        ("fs.protected_symlinks", "1"),
    ],
)
def test_os06_sysctl_file_values(host: Any, key: str, expected: str) -> None:
    assert _sysctl_file(host)[key] == expected


@needs_vm
def test_os06_sysctl_values_applied(host: Any) -> None:
    # The container shares the host kernel and /proc/sys is read-only here: applied values are checked on a VM.
    for key, expected in _sysctl_file(host).items():
        assert host.sysctl(key.lstrip("-")) == int(expected), key


def test_os07_rules_files(host: Any) -> None:
    rules = host.file(DEFAULTS["os_hardening_auditd_rules_file"])
    assert (rules.user, rules.mode) == ("root", 0o640)
    text = rules.content_string
    for key in (
        "identity",
        "logins",
        "scope",
        "time-change",
        "system-locale",
        "modules",
        "MAC-policy",
        "perm_mod",
        "privileged",
    ):
        assert f"-k {key}" in text, key
    assert "-w /etc/shadow -p wa -k identity" in text
    assert "-w /etc/sudoers.d/ -p wa -k scope" in text
    assert "-S init_module,finit_module,delete_module -k modules" in text


def test_os07_every_setuid_program_is_audited(host: Any) -> None:
    audited = set(re.findall(r"-F path=(\S+) -F perm=x", host.file("/etc/audit/audit.rules").content_string))
    setuid = set(host.check_output("find /usr/bin /usr/sbin /usr/lib -xdev -type f -perm /6000").split())
    assert {"/usr/bin/sudo", "/usr/bin/passwd", "/usr/bin/crontab"} <= setuid
    assert setuid <= audited


def test_os07_merged_rules_immutable_last(host: Any) -> None:
    merged = [
        line
        for line in host.file("/etc/audit/audit.rules").content_string.splitlines()
        if line and not line.startswith("#")
    ]
    assert merged[0] == "-D"
    assert merged[-1] == "-e 2"
    assert sum(line.startswith("-e") for line in merged) == 1
    assert host.run("augenrules --check").stdout.strip().endswith("No change")


def test_os07_auditd_conf(host: Any) -> None:
    conf = settings(host, "/etc/audit/auditd.conf", r"\s*=\s*")
    assert conf["max_log_file_action"] == "keep_logs"
    assert conf["admin_space_left_action"] == "suspend"


@needs_vm
def test_os07_auditd_running_with_the_rules(host: Any) -> None:
    assert host.service("auditd").is_running
    assert "enabled 2" in host.check_output("auditctl -s")


def test_os08_journal_persistent_and_forwarded(host: Any) -> None:
    effective = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    values = dict(line.split("=", 1) for line in effective.splitlines() if "=" in line and not line.startswith("#"))
    # The role's drop-in sorts after the test image's Storage=volatile, so its values win.
    assert values["Storage"] == "persistent"
    assert values["ForwardToSyslog"] == "yes"
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert host.file(f"/var/log/journal/{machine_id}/system.journal").exists
    host.check_output("logger -t os-hardening-test marker-os08")
    assert host.run("sleep 1; grep -q marker-os08 /var/log/syslog").rc == 0
    assert host.file("/var/log/syslog").mode == 0o640
    assert host.service("rsyslog").is_running


def test_os09_chrony(host: Any) -> None:
    assert host.package("chrony").is_installed
    assert not host.package("systemd-timesyncd").is_installed
    assert host.service("chrony").is_enabled
    # chronyd -p parses the configuration and prints it; a syntax error fails.
    printed = host.check_output("chronyd -p -f /etc/chrony/chrony.conf")
    assert "pool 0.debian.pool.ntp.org iburst" in printed
    assert "cmdport 0" in printed


def test_os10_unattended_security_upgrades(host: Any) -> None:
    assert host.package("unattended-upgrades").is_installed
    dump = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    origins = re.findall(r'^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', dump, re.M)
    assert origins == DEFAULTS["os_hardening_auto_updates_origins"]


def test_os11_banner(host: Any) -> None:
    for path in ("/etc/issue", "/etc/issue.net"):
        text = host.file(path).content_string
        assert text == DEFAULTS["os_hardening_banner_text"]
        # No getty escapes (\n, \r, \m) that would announce the host name or kernel before login.
        assert "\\" not in text


def test_os12_cron_permissions(host: Any) -> None:
    root_file(host, "/etc/crontab", 0o600)
    for directory in ("cron.d", "cron.hourly", "cron.daily", "cron.weekly", "cron.monthly"):
        root_file(host, f"/etc/{directory}", 0o700)
    for allow in ("cron.allow", "at.allow"):
        root_file(host, f"/etc/{allow}", 0o600)
        assert host.file(f"/etc/{allow}").content_string == "root\n"
    assert not host.file("/etc/cron.deny").exists


def test_os12_ordinary_user_cannot_use_crontab(host: Any, test_user: str) -> None:
    result = host.run(f"su - {test_user} -c 'crontab -l'")
    assert result.rc != 0
    assert "not allowed" in result.stderr


def test_os13_core_dumps_off(host: Any, test_user: str) -> None:
    assert host.check_output(f"su - {test_user} -c 'ulimit -Hc'") == "0"
    assert host.check_output("systemctl show --property DefaultLimitCORE") == "DefaultLimitCORE=0"
    coredump = host.check_output("systemd-analyze cat-config systemd/coredump.conf")
    assert "Storage=none" in coredump
    assert settings(host, "/etc/sysctl.d/61-os-hardening-core-dumps.conf", r"\s*=\s*") == {"fs.suid_dumpable": "0"}


def test_os14_apparmor(host: Any) -> None:
    assert host.package("apparmor").is_installed
    assert host.service("apparmor").is_enabled
    complain = host.run(
        "grep -rlE 'flags=\\(.*complain' /etc/apparmor.d --exclude-dir=abstractions --exclude-dir=tunables"
    )
    assert complain.stdout == ""


@needs_vm
def test_os14_apparmor_enforcing(host: Any) -> None:
    status = host.check_output("aa-status --json")
    assert '"complain"' not in status


@pytest.mark.parametrize("package", DEFAULTS["os_hardening_tooling_packages"])
def test_os15_tooling_installed(host: Any, package: str) -> None:
    assert host.package(package).is_installed

"""Measured outcome of the hardening roles: the Lynis hardening index of a converged host against a plain one.

Two test hosts boot from the same image; one is converged with os_hardening and ssh_hardening, the other is left
as it is. Lynis (Debian's package, installed in both the same way) audits each, and the indices from
/var/log/lynis-report.dat are compared in the same run, so image or Lynis changes move both figures together.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from auxip_testing.hosts import TestHosts

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

TARGET_INDEX = 80
#: What this suite insists on: measured 80 here (59 unhardened). The index moves with Debian's lynis and the packages
#: of the day's debootstrap image, so the hard floor sits a little under the target and the gain must stay large;
#: the printed line tells whether the target itself was met.
FLOOR_INDEX = 76
MIN_GAIN = 15
# The same command in both hosts; without recommends, so Lynis brings no extra tools that would score points.
INSTALL_LYNIS = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lynis"
)
PLAYBOOK = """\
- name: Harden
  hosts: hardened
  gather_facts: false
  tasks:
    - name: Apply os_hardening
      ansible.builtin.include_role:
        name: os_hardening
    - name: Apply ssh_hardening
      ansible.builtin.include_role:
        name: ssh_hardening
"""


def lynis_report(hosts: TestHosts, name: str) -> str:
    install = hosts.exec(name, "sh", "-c", INSTALL_LYNIS, check=False, timeout=600)
    assert install.returncode == 0, install.stderr
    audit = hosts.exec(name, "lynis", "audit", "system", "--quick", "--no-colors", check=False, timeout=900)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr
    return hosts.exec(name, "cat", "/var/log/lynis-report.dat").stdout


def hardening_index(report: str) -> int:
    found = re.search(r"^hardening_index=(\d+)$", report, re.M)
    assert found, "no hardening_index in /var/log/lynis-report.dat"
    return int(found.group(1))


def findings(report: str) -> str:
    """Lynis' warnings and suggestions, one a line: what is left to gain points with."""
    return "\n".join(line for line in report.splitlines() if line.startswith(("warning[]=", "suggestion[]=")))


def test_lynis_index_of_a_hardened_host(test_hosts: Callable[..., TestHosts], tmp_path: Path) -> None:
    hosts = test_hosts(["lynis-plain", "lynis-hardened"], groups={"hardened": ["lynis-hardened"]})
    playbook = tmp_path / "harden.yml"
    playbook.write_text(PLAYBOOK)
    # The test image masks apt's daily timers (no background dpkg lock); the role must not try to start them.
    converge = hosts.ansible_playbook(
        playbook, "-e", '{"os_hardening_auto_updates_manage_timers": false}', timeout=1500
    )
    assert converge.returncode == 0, converge.stdout[-6000:] + converge.stderr
    plain = hardening_index(lynis_report(hosts, "lynis-plain"))
    hardened_report = lynis_report(hosts, "lynis-hardened")
    hardened = hardening_index(hardened_report)
    verdict = "met" if hardened >= TARGET_INDEX else "NOT met"
    print(f"Lynis hardening index: plain {plain}, hardened {hardened} (target {TARGET_INDEX} {verdict})")
    print(f"Findings left on the hardened host:\n{findings(hardened_report)}")
    assert hardened - plain >= MIN_GAIN, findings(hardened_report)
    assert hardened >= FLOOR_INDEX, findings(hardened_report)

"""cloud-init user data that only prepares access: hostname, one admin user with keys. Hardening is Ansible's job."""

from __future__ import annotations

import yaml


def user_data(hostname: str, user: str, public_keys: list[str]) -> str:
    document = {
        "hostname": hostname,
        "preserve_hostname": False,
        "manage_etc_hosts": True,
        # Root and passwords are off from the first boot, before Ansible gets to harden sshd.
        "disable_root": True,
        "ssh_pwauth": False,
        "users": [
            {
                "name": user,
                "groups": ["sudo"],
                "shell": "/bin/bash",
                "lock_passwd": True,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(public_keys),
            }
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False)

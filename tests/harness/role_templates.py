"""Render an Ansible role's templates offline, exactly as the `template` module would, without running a playbook.

    text = render_role_template("kubernetes_control_plane", "audit-policy.yaml.j2", {"some_role_variable": 1})

The role's `defaults/main.yml` (and `vars/main.yml` when present, which wins over the defaults as in a play) are
loaded with ansible's own DataLoader and merged with `overrides` (highest precedence, like extra vars). Templating is
ansible-core's Templar, so every builtin filter and test (to_nice_yaml, b64encode, combine, version, ...) works and
values that reference other variables are resolved lazily, as in a play. Facts are not gathered: a template that reads
`ansible_facts` gets the ones passed in `overrides` (for example `{"ansible_facts": {"default_ipv4": {...}}}`).
Rendering takes milliseconds and needs no inventory, connection or subprocess.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]
from ansible.template import Templar, trust_as_template  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO_ROOT / "ansible" / "roles"

#: The `template` module's defaults (ansible.builtin.template: trim_blocks yes, lstrip_blocks no, newline "\n").
TEMPLATE_MODULE_OVERRIDES: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}


def role_dir(role: str) -> Path:
    path = ROLES_DIR / role
    if not (path / "tasks").is_dir() and not (path / "templates").is_dir():
        raise FileNotFoundError(f"no role {role!r} under {ROLES_DIR}")
    return path


@functools.lru_cache(maxsize=64)
def _load_vars_cached(path: Path, mtime_ns: int) -> Mapping[str, Any]:
    """Parsed once per file version: a test module renders hundreds of times (templating never mutates inputs)."""
    del mtime_ns  # part of the cache key only
    data = DataLoader().load_from_file(str(path), trusted_as_template=True)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(f"{path} does not hold a mapping")
    return data


def _load_vars(path: Path) -> dict[str, Any]:
    return dict(_load_vars_cached(path, path.stat().st_mtime_ns)) if path.is_file() else {}


def role_variables(role: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The role's defaults, then its vars/main.yml, then `overrides`, merged as a play would (unresolved)."""
    path = role_dir(role)
    variables = _load_vars(path / "defaults" / "main.yml")
    variables.update(_load_vars(path / "vars" / "main.yml"))
    variables.update(overrides or {})
    return variables


def render_role_template(role: str, template: str, overrides: Mapping[str, Any] | None = None) -> str:
    """Render `ansible/roles/<role>/templates/<template>` with the role's variables merged with `overrides`."""
    path = role_dir(role)
    source = path / "templates" / template
    if not source.is_file():
        raise FileNotFoundError(f"role {role!r} has no template {template!r}")
    loader = DataLoader()
    loader.set_basedir(str(path))
    variables = role_variables(role, overrides)
    variables.setdefault("role_path", str(path))
    variables.setdefault("ansible_managed", "Ansible managed")
    variables.setdefault("template_path", str(source))
    variables.setdefault("template_fullpath", str(source))
    templar = Templar(loader=loader).copy_with_new_env(
        searchpath=[str(path / "templates"), str(path)], available_variables=variables
    )
    text = trust_as_template(source.read_text(encoding="utf-8"))
    rendered = templar.template(text, escape_backslashes=False, overrides=TEMPLATE_MODULE_OVERRIDES)
    return "" if rendered is None else str(rendered)


def render_role_value(role: str, expression: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """Evaluate one Jinja expression (`"{{ kcp_api_server_extra_args }}"`) with the role's variables, native types."""
    path = role_dir(role)
    loader = DataLoader()
    loader.set_basedir(str(path))
    templar = Templar(loader=loader, variables=role_variables(role, overrides))
    return templar.template(trust_as_template(expression))

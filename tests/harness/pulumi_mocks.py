"""Run the Pulumi program of a stack under the SDK's mocks (no CLI, no plugins) and return what it registered.

Each run happens in a fresh interpreter (`python -m auxip_testing.pulumi_mocks STACK`): the SDK keeps global state,
so two stacks in one process would see each other's resources.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import runpy
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "auxip-platform"


@dataclass(frozen=True)
class RegisteredResource:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]


def stack_config(
    stack: str, overrides: Mapping[str, Any] | None = None, project_dir: Path = REPO_ROOT
) -> dict[str, Any]:
    """`Pulumi.<stack>.yaml`'s `config:` mapping with `overrides` merged in (`{"auxip-platform:layers": {"infra":
    False}}`): mappings merge key by key, anything else (lists included) replaces the value."""
    document = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    config = copy.deepcopy(document.get("config") or {})
    for key, value in (overrides or {}).items():
        config[key] = _merged(config.get(key), value)
    return config


def _merged(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in change.items()}}
    return copy.deepcopy(change)


class ProgramError(RuntimeError):
    """The program failed under mocks; the message holds its stderr (for config errors: the named keys)."""


def _fake_ip(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


def _mock_outputs(type_token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Typical provider outputs, so that components can chain on them (names, ids, addresses)."""
    outputs = dict(inputs)
    if type_token.startswith("kubernetes:"):
        metadata = dict(outputs.get("metadata") or {})
        metadata.setdefault("name", name)  # the real provider auto-names; mocks must do it by hand
        outputs["metadata"] = metadata
    elif type_token.startswith("openstack:"):
        outputs.setdefault("name", name)
        if type_token.startswith("openstack:compute/instance:"):
            outputs.setdefault("accessIpV4", _fake_ip(name))
        if type_token.startswith("openstack:networking/floatingIp:"):
            outputs.setdefault("address", _fake_ip(f"fip-{name}"))
        if type_token.startswith("openstack:loadbalancer/loadBalancer:"):
            outputs.setdefault("vipAddress", _fake_ip(f"vip-{name}"))
            outputs.setdefault("vipPortId", f"{name}-vip-port-id")
    return outputs


def _mock_call(token: str, args: dict[str, Any]) -> dict[str, Any]:
    """Data source lookups (external network, image by name) answer with a predictable id."""
    if token.startswith("openstack:"):
        function = token.rsplit(":", 1)[-1]
        return {**args, "id": f"{function}-{args.get('name', 'any')}-id"}
    return {}


def _run_in_this_process(stack: str, project_dir: Path, overrides: Mapping[str, Any]) -> list[RegisteredResource]:
    import pulumi
    from pulumi.runtime import mocks, rpc
    from pulumi.runtime import stack as pulumi_stack
    from pulumi.runtime.sync_await import _sync_await

    sys.path.insert(0, str(project_dir))
    from auxip_platform.infra.stack_config import engine_config

    config, secret_keys = engine_config(stack_config(stack, overrides, project_dir))
    pulumi.runtime.set_all_config(config, secret_keys)
    registered: list[RegisteredResource] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            return f"{args.name}-id", _mock_outputs(args.typ, args.name, args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            return _mock_call(args.token, dict(args.args)), []

    class RecordingMonitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                registered.append(
                    RegisteredResource(
                        type=request.type,
                        name=request.name,
                        urn=response.urn,
                        parent=request.parent,
                        custom=bool(request.custom),
                        inputs=rpc.deserialize_properties(request.object),
                    )
                )
            return response

    mocks.set_mocks(Mocks(), project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(Mocks()))
    program = str(project_dir / "__main__.py")
    _sync_await(pulumi_stack.run_pulumi_func(lambda: runpy.run_path(program, run_name="__main__")))
    return registered


def run_program(
    stack: str, project_dir: Path = REPO_ROOT, overrides: Mapping[str, Any] | None = None
) -> list[RegisteredResource]:
    """Every resource the program registers for `Pulumi.<stack>.yaml` (with `overrides`, see `stack_config`),
    components included, in registration order."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "auxip_testing.pulumi_mocks", stack, "--project-dir", str(project_dir)),
            *("--overrides", json.dumps(overrides or {})),
        ],
        capture_output=True,
        text=True,
        cwd=project_dir,
        check=False,
    )
    if result.returncode != 0:
        raise ProgramError(f"stack {stack!r} failed under mocks:\n{result.stderr.strip()}")
    return [RegisteredResource(**item) for item in json.loads(result.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stack")
    parser.add_argument("--project-dir", type=Path, default=REPO_ROOT)
    parser.add_argument("--overrides", type=json.loads, default={}, help="JSON object merged into the stack config")
    args = parser.parse_args()
    try:
        resources = _run_in_this_process(args.stack, args.project_dir, args.overrides)
    except Exception as exc:
        # Config errors already name the key; a traceback would bury that line.
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    json.dump([asdict(r) for r in resources], sys.stdout, default=str)


if __name__ == "__main__":
    main()

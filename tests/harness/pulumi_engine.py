"""The real Pulumi engine on the project's program: `pulumi preview/up/destroy` through the Automation API.

The engine is the Pulumi CLI and the Kubernetes provider that `go_tools` builds from the Go module proxy. No Python
language host can be built here (its module is refused), and none is needed: with an inline program the Python SDK
serves the language runtime itself. The inline program is `run_main_program`, which runs `__main__.py` exactly as
the language host does (`runpy` with `__name__ == "__main__"`), so the engine runs the program a platform engineer
runs, not a copy of it. The state lives in a file backend, secrets use the passphrase provider with a passphrase
generated per run, and the default Kubernetes provider talks to the cluster of `KUBECONFIG`.

`python -m auxip_testing.pulumi_engine {preview,up,destroy} STACK --kubeconfig FILE --state DIR` drives one stack
by hand, against the control plane that `python -m auxip_testing.kube_control_plane` keeps running.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from auxip_testing import go_tools
from auxip_testing.pulumi_mocks import PROJECT, REPO_ROOT, stack_config

#: What the engine reports for a resource it leaves alone; any other operation is a change.
SAME = "same"
STACK_TYPE = "pulumi:pulumi:Stack"


def run_main_program() -> None:
    """The project's Pulumi program, run the way the Python language host runs it."""
    runpy.run_path(str(REPO_ROOT / "__main__.py"), run_name="__main__")


def _config_json(config: Mapping[str, Any]) -> str:
    """`pulumi config set-all --json` input: objects stay objects, as they are in a stack file."""
    entries = {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise ValueError(f"{key}: encrypted values of a stack file cannot be carried to a test stack")
        if isinstance(value, dict | list):
            entries[key] = {"value": json.dumps(value), "objectValue": value}
        else:
            entries[key] = {"value": json.dumps(value) if isinstance(value, bool) else str(value)}
    return json.dumps(entries)


@dataclass(frozen=True)
class ResourceChange:
    op: str
    type: str
    name: str
    #: Property paths that differ (`spec.replicas`), as the engine reports them.
    diffs: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.op} {self.type} {self.name}" + (f" ({', '.join(self.diffs)})" if self.diffs else "")


@dataclass
class EngineRun:
    """What one engine operation did: every resource's operation, and the engine's own output (also appended to
    `log_path` as it comes, so a slow or stuck operation can be watched and a failed test shows where it was)."""

    log_path: Path
    changes: list[ResourceChange] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def on_output(self, line: str) -> None:
        self.output.append(line)
        with self.log_path.open("a") as log:
            log.write(line if line.endswith("\n") else line + "\n")

    def on_event(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is None:
            return
        metadata = pre.metadata
        name = metadata.urn.rsplit("::", 1)[-1]
        diffs = tuple(sorted(metadata.diffs or ()))
        self.changes.append(ResourceChange(str(metadata.op.value), metadata.type, name, diffs))

    def changed(self, custom_only: bool = True) -> list[ResourceChange]:
        """Operations other than `same`; components (our `auxip:` types) and the stack are left out by default."""
        return sorted(
            (c for c in self.changes if c.op != SAME and not (custom_only and _is_component(c.type))),
            key=lambda c: (c.type, c.name, c.op),
        )


def _passphrase(state_dir: Path) -> str:
    """The state's secrets passphrase: generated with the state and kept beside it (0600), so a stack reopened on the
    same state (the CLI below, a second test) can decrypt what the first run encrypted."""
    path = state_dir / "passphrase"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text()


def _is_component(type_token: str) -> bool:
    return type_token.startswith("auxip:") or type_token == STACK_TYPE


@dataclass
class EngineStack:
    """One stack of the project's program on the file backend in `state_dir`, deploying to `kubeconfig`'s cluster."""

    name: str
    kubeconfig: Path
    state_dir: Path
    config: dict[str, Any]
    program: Callable[[], None] = run_main_program
    _stack: auto.Stack | None = field(default=None, init=False, repr=False)

    def environment(self) -> dict[str, str]:
        tools = [str(go_tools.program_dir(name)) for name in ("pulumi", "pulumi-kubernetes")]
        return {
            # The provider is found on PATH (an "ambient" plugin): nothing is ever downloaded.
            "PATH": os.pathsep.join([*tools, os.environ.get("PATH", "/usr/bin:/bin")]),
            "PULUMI_HOME": str(self.state_dir / "home"),
            "PULUMI_CONFIG_PASSPHRASE": _passphrase(self.state_dir),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "KUBECONFIG": str(self.kubeconfig),
        }

    @property
    def stack(self) -> auto.Stack:
        if self._stack is None:
            backend = self.state_dir / "backend"
            backend.mkdir(parents=True, exist_ok=True)
            work_dir = self.state_dir / "work"
            work_dir.mkdir(parents=True, exist_ok=True)
            options = auto.LocalWorkspaceOptions(
                # Not the repository: the workspace writes Pulumi.yaml and Pulumi.<stack>.yaml of its own.
                work_dir=str(work_dir),
                pulumi_home=str(self.state_dir / "home"),
                pulumi_command=auto.PulumiCommand(root=str(go_tools.program_dir("pulumi").parent)),
                env_vars=self.environment(),
                project_settings=auto.ProjectSettings(
                    name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=f"file://{backend}")
                ),
                secrets_provider="passphrase",
            )
            self._stack = auto.create_or_select_stack(
                stack_name=self.name, project_name=PROJECT, program=self.program, opts=options
            )
        return self._stack

    def set_config(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        stack = self.stack
        current = list(stack.get_all_config())
        if current:
            stack.workspace.remove_all_config(self.name, current)
        stack.workspace.set_all_config_json(self.name, _config_json(self.config))

    @property
    def log_path(self) -> Path:
        return self.state_dir / "engine.log"

    def _run(self, operation: Callable[..., Any]) -> EngineRun:
        run = EngineRun(self.log_path)
        operation(on_event=run.on_event, on_output=run.on_output, color="never")
        return run

    def preview(self) -> EngineRun:
        return self._run(self.stack.preview)

    def up(self) -> EngineRun:
        return self._run(self.stack.up)

    def destroy(self) -> EngineRun:
        return self._run(self.stack.destroy)

    def outputs(self) -> dict[str, Any]:
        return {key: value.value for key, value in self.stack.outputs().items()}


def open_stack(name: str, kubeconfig: Path, state_dir: Path, overrides: Mapping[str, Any] | None = None) -> EngineStack:
    """The stack `name` with the config of `Pulumi.<name>.yaml` plus `overrides`, ready for preview/up/destroy."""
    engine = EngineStack(name, kubeconfig, state_dir, stack_config(name, overrides))
    engine.set_config(engine.config)
    return engine


def main() -> int:
    from auxip_testing.charts import charts_directory

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("operation", choices=("preview", "up", "destroy"))
    parser.add_argument("stack")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True, help="directory of the file backend (kept)")
    args = parser.parse_args()
    overrides = {
        f"{PROJECT}:layers": {"infra": False},
        f"{PROJECT}:apiServerOnly": {"chartDirectory": str(charts_directory())},
    }
    engine = open_stack(args.stack, args.kubeconfig.resolve(), args.state.resolve(), overrides)
    run = getattr(engine, args.operation)()
    print("\n".join(run.output))
    for change in run.changed():
        print(change)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Third-party Go programs the suite runs, built from the Go module proxy and cached by version.

No release binary, cluster or Helm repository is reachable from CI, but the Go module proxy serves the modules these
programs are built from (`../shared/recipes/go-built-tools/`):

| program | module, version | what for |
|---|---|---|
| kube-apiserver, kube-controller-manager | k8s.io/kubernetes v1.33.13 | the cluster tier's control plane |
| etcd | go.etcd.io/etcd/server/v3 v3.6.17 | its storage |
| helm | helm.sh/helm/v3 v3.22.1 | `helm template` of every chart the stacks install |
| pulumi | github.com/pulumi/pulumi/pkg/v3 v3.274.0 | the engine the Automation API drives |
| pulumi-resource-kubernetes | pulumi-kubernetes/provider/v4 (4.25.0, the one build the proxy serves) | its provider |

Each program has a main module of ours under `go_modules/<name>/` whose `go.mod` and `go.sum` pin every module of
the build, transitive ones included, by version and hash (`-mod=readonly`: a build never resolves anything anew).
Binaries land in `cache_root()/go-<name>-<version>-<pins hash>/bin`; the Go module and build caches are Go's own
(`go env GOMODCACHE GOCACHE`), shared by the builds. A cold build of all five takes about 25 minutes of two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auxip_testing.cache import cached_dir

MODULES_DIR = Path(__file__).with_name("go_modules")
#: The `tool` directive (Go 1.24) is what keeps `go mod tidy` from dropping k8s.io/kubernetes from the build list.
MIN_GO = (1, 24)
#: Seconds between progress lines while a build runs.
PROGRESS_EVERY = 30.0

KUBERNETES_VERSION = "1.33.13"
ETCD_VERSION = "v3.6.17"
HELM_VERSION = "v3.22.1"
PULUMI_VERSION = "v3.274.0"
#: The only build of github.com/pulumi/pulumi-kubernetes/provider/v4 the proxy serves (a commit one day before the
#: v4.25.0 tag; every tagged version is refused). It is stamped 4.25.0, the version of the Python SDK we pin.
PULUMI_KUBERNETES_VERSION = "4.25.0"
PULUMI_KUBERNETES_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PULUMI_KUBERNETES_PSEUDO_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"


def _kubernetes_ldflags() -> str:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    flags = ["-s", "-w"]
    # Without these `--version` says v0.0.0-master, and discovery reports that to every client.
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion=v{KUBERNETES_VERSION}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _helm_ldflags() -> str:
    # helm's own Makefile flags: without the k8s version ones `helm template` assumes Kubernetes 1.20 unless told.
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"]
    flags.append("-X helm.sh/helm/v3/internal/version.gitTreeState=clean")
    for package in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        flags += [f"-X {package}.k8sVersionMajor=1", f"-X {package}.k8sVersionMinor=37"]
    return " ".join(flags)


def _provider_sources(module_dir: Path, go: str, env: dict[str, str]) -> None:
    """The provider's `main.go` embeds JSON files that upstream generates (`go generate`) and the module zip lacks:
    make them from the module's `schema.json` the way upstream's generate.go does (version stamped)."""
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{PULUMI_KUBERNETES_MODULE}@{PULUMI_KUBERNETES_PSEUDO_VERSION}"],
        capture_output=True, text=True, check=True, env=env, cwd=module_dir,
    )  # fmt: skip
    source = Path(json.loads(result.stdout)["Dir"]) / "cmd" / "pulumi-resource-kubernetes"
    target = module_dir / "cmd" / "pulumi-resource-kubernetes"
    schema = json.loads((source / "schema.json").read_text())
    schema["version"] = PULUMI_KUBERNETES_VERSION
    (target / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((source / "terraform-mapping.json").read_text())
    (target / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


@dataclass(frozen=True)
class GoProgram:
    #: The folder of its main module under `go_modules/`.
    name: str
    version: str
    #: Binary name -> the package it is built from.
    packages: dict[str, str]
    ldflags: str
    #: Sources generated into the copy of the main module before the build.
    generate: Callable[[Path, str, dict[str, str]], None] | None = field(default=None, compare=False)

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(self.packages)

    @property
    def module_dir(self) -> Path:
        return MODULES_DIR / self.name

    def pins_hash(self) -> str:
        """Changes whenever a pinned module, a build flag or a generated source's recipe changes."""
        digest = hashlib.sha256(self.ldflags.encode())
        for path in sorted(p for p in self.module_dir.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(self.module_dir)).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:12]

    @property
    def cache_key(self) -> str:
        return f"go-{self.name}-{self.version}-{self.pins_hash()}"


PROGRAMS = {
    program.name: program
    for program in (
        GoProgram(
            "kubernetes",
            KUBERNETES_VERSION,
            {
                "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
                "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            },
            _kubernetes_ldflags(),
        ),
        GoProgram("etcd", ETCD_VERSION, {"etcd": "go.etcd.io/etcd/server/v3"}, "-s -w"),
        GoProgram("helm", HELM_VERSION, {"helm": "helm.sh/helm/v3/cmd/helm"}, _helm_ldflags()),
        GoProgram(
            "pulumi",
            PULUMI_VERSION,
            {"pulumi": "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"},
            f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={PULUMI_VERSION}",
        ),
        GoProgram(
            "pulumi-kubernetes",
            PULUMI_KUBERNETES_VERSION,
            {"pulumi-resource-kubernetes": "./cmd/pulumi-resource-kubernetes"},
            f"-s -w -X {PULUMI_KUBERNETES_MODULE}/pkg/version.Version={PULUMI_KUBERNETES_VERSION}",
            _provider_sources,
        ),
    )
}


def go_binary() -> str:
    """The Go toolchain (Debian's golang is too old: the builds need the `tool` directive of Go 1.24)."""
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if not found:
        raise FileNotFoundError("go not found: building the cluster tier's tools needs Go >= 1.24 on PATH")
    version = subprocess.run([found, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"go(\d+)\.(\d+)", version.strip())
    if not match or (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise RuntimeError(f"{found} is {version.strip()}; the cluster tier's tools need Go >= 1.24")
    return found


def _build_env() -> dict[str, str]:
    return {
        **os.environ,
        "CGO_ENABLED": "0",
        # The pins are the committed go.sum: nothing may be re-resolved, and no other toolchain is fetched.
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOTOOLCHAIN": "local",
    }


def _run_with_progress(argv: list[str], cwd: Path, env: dict[str, str], label: str) -> None:
    """Run a `go build -v`, printing how many packages it has compiled every PROGRESS_EVERY seconds."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    done = threading.Event()

    def report() -> None:
        while not done.wait(PROGRESS_EVERY):
            print(
                f"    {label}: {len(lines)} packages compiled, {time.monotonic() - started:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
        code = process.wait()
    finally:
        done.set()
    if code != 0:
        tail = "\n".join(lines[-40:])
        raise RuntimeError(f"building {label} failed ({' '.join(argv[:3])} ... exited {code}):\n{tail}")
    print(f"    {label}: built in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)


def build(program: GoProgram, work: Path) -> None:
    go, env = go_binary(), _build_env()
    source = work / "src"
    shutil.copytree(program.module_dir, source)
    if program.generate is not None:
        program.generate(source, go, env)
    out = work / "bin"
    out.mkdir()
    for name, package in program.packages.items():
        argv = [go, "build", "-v", "-trimpath", f"-ldflags={program.ldflags}", "-o", str(out / name), package]
        _run_with_progress(argv, source, env, f"{name} {program.version}")
        if not (out / name).is_file():
            raise RuntimeError(f"go build reported success but {out / name} is missing")
    shutil.rmtree(source)


def program_dir(name: str) -> Path:
    """`cache_root()/go-<name>-…/bin`, building the program on first use."""
    program = PROGRAMS[name]
    return cached_dir(program.cache_key, lambda work: build(program, work)) / "bin"


def binary(name: str) -> Path:
    """The path of one built binary by its name (`kube-apiserver`, `etcd`, `helm`, `pulumi`, ...)."""
    for program in PROGRAMS.values():
        if name in program.binaries:
            return program_dir(program.name) / name
    known = sorted(b for p in PROGRAMS.values() for b in p.binaries)
    raise KeyError(f"{name} is not one of the Go-built tools: {', '.join(known)}")


def helm() -> Path:
    return binary("helm")


def build_all() -> list[Path]:
    """Every program, one after the other (two builds at once only contend for the same cores)."""
    return [program_dir(name) for name in PROGRAMS]


if __name__ == "__main__":
    for path in build_all():
        print(path)

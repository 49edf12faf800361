"""The Go-built tools: every pin in one place agrees with its module, and builds are keyed and reported well."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from auxip_testing import go_tools
from auxip_testing.go_tools import PROGRAMS, GoProgram

#: The module each program's main module must require, at the version the constants pin.
REQUIRED = {
    "kubernetes": f"k8s.io/kubernetes v{go_tools.KUBERNETES_VERSION}",
    "etcd": f"go.etcd.io/etcd/server/v3 {go_tools.ETCD_VERSION}",
    "helm": f"helm.sh/helm/v3 {go_tools.HELM_VERSION}",
    "pulumi": f"github.com/pulumi/pulumi/pkg/v3 {go_tools.PULUMI_VERSION}",
    "pulumi-kubernetes": f"{go_tools.PULUMI_KUBERNETES_MODULE} {go_tools.PULUMI_KUBERNETES_PSEUDO_VERSION}",
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_each_main_module_pins_the_version_the_harness_names(name: str) -> None:
    module = PROGRAMS[name].module_dir
    go_mod = (module / "go.mod").read_text()
    assert go_mod.startswith(f"module auxip.local/gotools/{name}\n")
    assert re.search(rf"^\s*(require )?{re.escape(REQUIRED[name])}\b", go_mod, re.MULTILINE), REQUIRED[name]
    # Every module of the build is pinned by hash: builds run with -mod=readonly and never resolve anything anew.
    assert (module / "go.sum").stat().st_size > 10_000


def test_kubernetes_staging_modules_follow_the_kubernetes_version() -> None:
    go_mod = (PROGRAMS["kubernetes"].module_dir / "go.mod").read_text()
    staged = re.findall(r"^\s*(k8s\.io/[a-z-]+) => k8s\.io/[a-z-]+ (v\S+)$", go_mod, re.MULTILINE)
    assert len(staged) > 25
    assert {version for _, version in staged} == {"v0." + go_tools.KUBERNETES_VERSION.removeprefix("1.")}


def _copy(program: GoProgram, root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(program.module_dir, root / program.name)
    monkeypatch.setattr(go_tools, "MODULES_DIR", root)
    return root / program.name


def test_the_cache_key_follows_the_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = PROGRAMS["helm"]
    key = program.cache_key
    assert key.startswith(f"go-helm-{go_tools.HELM_VERSION}-")
    copy = _copy(program, tmp_path, monkeypatch)
    assert program.cache_key == key
    (copy / "go.sum").write_text((copy / "go.sum").read_text() + "example.com/x v1.0.0 h1:AAAA=\n")
    assert program.cache_key != key


def test_unknown_binary_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"kube-apiserver.*pulumi-resource-kubernetes"):
        go_tools.binary("kubectl")


def test_a_failed_build_reports_the_compiler_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "modules" / "broken"
    module.mkdir(parents=True)
    (module / "go.mod").write_text("module auxip.local/gotools/broken\n\ngo 1.24\n")
    (module / "main.go").write_text("package main\n\nfunc main() { undefinedCall() }\n")
    monkeypatch.setattr(go_tools, "MODULES_DIR", tmp_path / "modules")
    monkeypatch.setenv("AUXIP_CACHE_DIR", str(tmp_path / "cache"))
    broken = GoProgram("broken", "v0", {"broken": "."}, "-s -w")
    with pytest.raises(RuntimeError, match=r"(?s)building broken v0 failed.*undefined: undefinedCall"):
        go_tools.build(broken, tmp_path / "work")

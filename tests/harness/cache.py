"""Artifacts (jars, distributions, built binaries, images) cached outside the repository, keyed by version."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from auxip_testing.process import require_binary


def cache_root() -> Path:
    """`$AUXIP_CACHE_DIR`, else `$XDG_CACHE_HOME/auxip`, else `~/.cache/auxip`."""
    configured = os.environ.get("AUXIP_CACHE_DIR")
    xdg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    root = Path(configured) if configured else xdg / "auxip"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builders of one artifact across processes (pytest-xdist workers, parallel CI steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_dir(key: str, build: Callable[[Path], None]) -> Path:
    """Return `cache_root()/key`, building it with `build(tmpdir)` first if absent; the swap is atomic."""
    target = cache_root() / key
    if target.is_dir():
        return target
    with _locked(target):
        if target.is_dir():
            return target
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(work)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _maven_repo() -> Path:
    return Path(os.environ.get("MAVEN_REPO", Path.home() / ".m2" / "repository"))


def _mvn(*args: str) -> list[str]:
    """Maven in batch mode, colourless, against the repository `maven_artifact` reads from (`$MAVEN_REPO`)."""
    mvn = require_binary("mvn", "maven", "fetching artifacts from Maven Central")
    return [mvn, "-B", "-q", "-Dstyle.color=never", f"-Dmaven.repo.local={_maven_repo()}", *args]


def maven_artifact(coordinates: str) -> Path:
    """Fetch one Maven Central artifact (`group:artifact:version[:packaging[:classifier]]`) with Maven itself.

    Returns the file inside the local Maven repository (~/.m2), which is the cache.
    """
    parts = coordinates.split(":")
    group, artifact, version = parts[:3]
    packaging = parts[3] if len(parts) > 3 else "jar"
    classifier = parts[4] if len(parts) > 4 else ""
    m2 = _maven_repo()
    name = f"{artifact}-{version}{'-' + classifier if classifier else ''}.{packaging}"
    path = m2 / group.replace(".", "/") / artifact / version / name
    if not path.exists():
        subprocess.run(
            _mvn("dependency:get", f"-Dartifact={coordinates}", "-Dtransitive=false"),
            check=True,
        )
    if not path.exists():
        raise FileNotFoundError(f"Maven reported success but {path} is missing")
    return path


def maven_classpath(key: str, coordinates: list[str]) -> Path:
    """Resolve `coordinates` with their transitive runtime dependencies into `cache_root()/key` (a dir of jars)."""

    def build(work: Path) -> None:
        deps = "\n".join(
            "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>".format(
                *c.split(":")[:3]
            )
            for c in coordinates
        )
        (work / "pom.xml").write_text(
            '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            "<groupId>auxip.harness</groupId><artifactId>classpath</artifactId><version>1</version>"
            f"<dependencies>{deps}</dependencies></project>"
        )
        subprocess.run(
            _mvn(
                "-f",
                str(work / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={work / 'lib'}",
            ),
            check=True,
        )
        (work / "pom.xml").unlink()

    return cached_dir(key, build) / "lib"

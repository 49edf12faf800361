"""Build and cache the AUXIP apps container image (the repository's Containerfile) and the Debian base it starts from.

No registry is reachable and the build must not download anything, so:

* the base `localhost/auxip-base:bookworm-<hash>` is a debootstrap minbase root filesystem (python3, ca-certificates,
  tini) imported into podman; the tag hashes what shapes it (suite, mirror, package list, revision);
* the build context is a directory holding only `wheelhouse/`, filled on the host: the runtime dependencies as wheels
  (exact versions from requirements.lock, dev extras and the infrastructure-only Pulumi packages left out), the
  project wheel, and a pip wheel that runs only inside the build stage.

The image tag hashes the Containerfile, .containerignore, pyproject, the lock, the base reference and the app sources,
so an unchanged tree reuses the image and any change builds a new one, whose tag replaces the previous build's.

CLI (prints the reference on stdout, progress and timings on stderr):

    python -m auxip_testing.app_image                # base and image, built if missing
    python -m auxip_testing.app_image --base-only    # only the base image (prints its digest too)
    python -m auxip_testing.app_image --context DIR  # only write the build context into DIR (for a hand-run build)
    python -m auxip_testing.app_image --rebuild      # rebuild the image (not the base)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from auxip_testing import host_image
from auxip_testing.cache import cache_root, cached_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO_ROOT / "Containerfile"
IGNOREFILE = REPO_ROOT / ".containerignore"
PYPROJECT = REPO_ROOT / "pyproject.toml"
LOCK = REPO_ROOT / "requirements.lock"
#: The only package of the distribution the image keeps (the Containerfile drops auxip_platform and auxip_testing).
APP_SOURCES = REPO_ROOT / "apps" / "auxip"

#: Bump by hand for changes the base tag hash cannot see (the clean-up in _slim_rootfs).
BASE_REVISION = "v1"
BASE_PACKAGES: tuple[str, ...] = ("python3", "ca-certificates", "tini")
BASE_REPOSITORY = "localhost/auxip-base"
IMAGE_REPOSITORY = "localhost/auxip"
#: Moving alias of the newest image build, for running it by hand.
IMAGE_ALIAS = f"{IMAGE_REPOSITORY}:dev"
#: pip is not in requirements.lock (it is the tool, not a dependency); this is the version the venv was made with.
PIP_VERSION = "25.3"
#: Requirements of the distribution that only the Pulumi programs (infra/, auxip.deploy) use; the apps never import
#: them and they would triple the image. Checked against pyproject so a rename cannot silently bring them back.
INFRA_ONLY = frozenset({"pulumi", "pulumi-kubernetes", "pulumi-openstack"})
APP_UID = 10001


class ImageBuildError(RuntimeError):
    """A step of the base or image build failed; the message names the step."""


def log(message: str) -> None:
    print(f"app_image: {message}", file=sys.stderr, flush=True)


def _hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """One builder of `name` at a time across processes (parallel CI steps, pytest-xdist workers)."""
    with open(cache_root() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(step: str, command: list[str], stdin: IO[bytes] | None = None, env: dict[str, str] | None = None) -> None:
    """Run one build step with its output on stderr; a failure names the step and keeps the tool's exit code."""
    try:
        subprocess.run(command, check=True, stdin=stdin, stdout=sys.stderr, env=env)
    except subprocess.CalledProcessError as exc:
        raise ImageBuildError(f"{step} failed (exit {exc.returncode}): {' '.join(command)}") from None


# --- base image -----------------------------------------------------------------------------------------------------


def base_ref() -> str:
    tag = _hash(host_image.SUITE, host_image.MIRROR, BASE_REVISION, *sorted(BASE_PACKAGES))
    return f"{BASE_REPOSITORY}:{host_image.SUITE}-{tag}"


def image_digest(ref: str) -> str:
    inspected = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Digest}}", ref], capture_output=True, text=True, check=True
    )
    return inspected.stdout.strip()


def _slim_rootfs(rootfs: Path) -> None:
    """Drop what a service image never reads: the .deb cache, apt lists, manuals (copyright files stay)."""
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    for docs in ("usr/share/man", "usr/share/info"):
        shutil.rmtree(rootfs / docs, ignore_errors=True)


def _build_base(ref: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=".app-base.", dir=cache_root()))
    rootfs = work / "rootfs"
    # The .deb cache is the test-host image's: python3 and friends are downloaded once for both images.
    debs = cache_root() / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        log(f"debootstrap {host_image.SUITE} minbase + {','.join(BASE_PACKAGES)} into {rootfs}")
        _run(
            "debootstrap",
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                f"--cache-dir={debs}",
                host_image.SUITE,
                str(rootfs),
                host_image.MIRROR,
            ],
            env={"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
        )
        _slim_rootfs(rootfs)
        log(f"debootstrap done in {time.monotonic() - started:.0f}s; importing as {ref}")
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(
                "podman import",
                [
                    "podman",
                    "import",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["python3"]',
                    "--change",
                    f"LABEL org.auxip.base.packages={','.join(BASE_PACKAGES)}",
                    "--message",
                    f"auxip base {ref}",
                    "-",
                    ref,
                ],
                stdin=tar.stdout,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise ImageBuildError(f"tar of {rootfs} failed with exit {tar.returncode}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"built {ref} in {time.monotonic() - started:.0f}s")
    _remove_older(BASE_REPOSITORY, keep={ref})


def ensure_base() -> str:
    """Return the reference of the base image, debootstrapping it first if podman does not have it."""
    host_image.require_tools()
    ref = base_ref()
    if host_image.image_exists(ref):
        return ref
    # host_image's lock, because both builds write the same .deb cache.
    with host_image.build_lock():
        if not host_image.image_exists(ref):
            _build_base(ref)
    return ref


def pinned_base() -> str:
    """The base as `repository@sha256:...`: the Containerfile's BASE, immune to a re-tag between two builds."""
    return f"{BASE_REPOSITORY}@{image_digest(ensure_base())}"


def _remove_older(repository: str, keep: set[str]) -> None:
    """Drop the tags of earlier builds; an image still used by a container stays."""
    listing = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True,
        text=True,
        check=False,
    )
    for old in sorted(set(listing.stdout.split()) - keep):
        removed = subprocess.run(["podman", "rmi", old], capture_output=True, text=True, check=False)
        log(f"removed older image {old}" if removed.returncode == 0 else f"kept {old}: {removed.stderr.strip()}")


# --- wheelhouse and build context -----------------------------------------------------------------------------------


def _canonical(requirement: str) -> str:
    name = requirement
    for separator in "[<>=!~; ":
        name = name.split(separator, 1)[0]
    return name.lower().replace("_", "-").replace(".", "-")


def runtime_requirements() -> list[str]:
    """The distribution's own requirements minus INFRA_ONLY; the dev extras are never read."""
    declared: list[str] = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    missing = INFRA_ONLY - {_canonical(requirement) for requirement in declared}
    if missing:
        raise ImageBuildError(f"INFRA_ONLY names {', '.join(sorted(missing))}, which pyproject no longer requires")
    return [requirement for requirement in declared if _canonical(requirement) not in INFRA_ONLY]


def _pip(*args: str) -> list[str]:
    # The interpreter running this module is the project's (Python 3.11 on Debian 12, as in the image).
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def _build_dependencies(work: Path) -> None:
    requirements = work / "runtime.in"
    requirements.write_text("\n".join(runtime_requirements()) + "\n")
    deps = work / "deps"
    _run(
        "pip wheel (runtime dependencies)",
        _pip(
            "wheel", "--quiet", "--wheel-dir", str(deps), "--constraint", str(LOCK), "--requirement", str(requirements)
        ),
    )
    # Exact pins of what was resolved: the image installs these with --no-deps, so nothing is resolved offline.
    pins = sorted("==".join(wheel.name.split("-")[:2]) for wheel in deps.glob("*.whl"))
    (deps / "requirements.txt").write_text("\n".join(pins) + "\n")
    _run(
        "pip download (pip for the build stage)",
        _pip("download", "--quiet", "--no-deps", "--only-binary", ":all:", "--dest", str(work), f"pip=={PIP_VERSION}"),
    )
    (work / f"pip-{PIP_VERSION}-py3-none-any.whl").rename(work / "pip.whl")
    requirements.unlink()


def dependency_wheelhouse() -> Path:
    """Wheels of the runtime dependencies, cached by everything that decides them."""
    key = _hash(
        LOCK.read_bytes(), *runtime_requirements(), PIP_VERSION, f"py{sys.version_info[0]}{sys.version_info[1]}"
    )
    return cached_dir(f"app-wheelhouse-{key}", _build_dependencies)


def _build_project_wheel(dest: Path) -> None:
    """Build the project wheel from a copy of the tree, so setuptools writes build/ and egg-info outside the repo."""
    with tempfile.TemporaryDirectory(prefix=".app-src.", dir=cache_root()) as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        shutil.copy2(PYPROJECT, source / PYPROJECT.name)
        package_dirs: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
        for relative in sorted(set(package_dirs.values())):
            shutil.copytree(
                REPO_ROOT / relative, source / relative, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        _run("pip wheel (project)", _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(source)))


def prepare_context(context: Path) -> Path:
    """Fill `context/wheelhouse` (pip.whl, deps/, app/) and return `context`; the directory must not hold one yet."""
    wheelhouse = context / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    deps = dependency_wheelhouse()
    shutil.copy2(deps / "pip.whl", wheelhouse / "pip.whl")
    # Hard links: the context is thrown away after each build and the cached wheels are never modified.
    shutil.copytree(deps / "deps", wheelhouse / "deps", copy_function=_link_or_copy)
    _build_project_wheel(wheelhouse / "app")
    return context


def _link_or_copy(source: str, target: str) -> None:
    try:
        Path(target).hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


# --- the image ------------------------------------------------------------------------------------------------------


def _sources_digest() -> list[bytes]:
    parts: list[bytes] = []
    for path in sorted(APP_SOURCES.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            parts += [str(path.relative_to(REPO_ROOT)).encode(), path.read_bytes()]
    return parts


def project_version() -> str:
    version: str = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    return version


def image_ref(base: str) -> str:
    """The reference of the image for the current tree on `base`, whether built or not."""
    key = _hash(
        base,
        PIP_VERSION,
        *sorted(INFRA_ONLY),
        *(path.read_bytes() for path in (CONTAINERFILE, IGNOREFILE, PYPROJECT, LOCK)),
        *_sources_digest(),
    )
    return f"{IMAGE_REPOSITORY}:{project_version()}-{key}"


def _revision() -> str:
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return head.stdout.strip() if head.returncode == 0 else "unknown"


def build_command(base: str, ref: str, context: Path) -> list[str]:
    """The `podman build` invocation, also what the README shows for a hand-run build."""
    return [
        "podman",
        "build",
        "--runtime",
        "runc",
        "--format",
        "docker",
        # No intermediate images: each source change would leave ~170 MB of cached layers behind. Unchanged trees
        # are skipped by the tag anyway, and a full build takes about 20 s.
        "--layers=false",
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        f"VERSION={project_version()}",
        "--build-arg",
        f"REVISION={_revision()}",
        "--label",
        f"org.auxip.image.source-key={ref.rpartition(':')[2]}",
        "--file",
        str(CONTAINERFILE),
        "--ignorefile",
        str(IGNOREFILE),
        "--tag",
        ref,
        str(context),
    ]


def ensure_image(rebuild: bool = False) -> str:
    """Return the reference of the apps image for the current tree, building the base and the image if missing."""
    base = pinned_base()
    ref = image_ref(base)
    if not rebuild and host_image.image_exists(ref):
        return ref
    with _lock("app-image"):
        if rebuild or not host_image.image_exists(ref):
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=".app-context.", dir=cache_root()) as scratch:
                context = prepare_context(Path(scratch))
                log(f"build context ready in {time.monotonic() - started:.1f}s; building {ref} on {base}")
                _run("podman build", build_command(base, ref, context))
            _run("podman tag", ["podman", "tag", ref, IMAGE_ALIAS])
            log(f"built {ref} in {time.monotonic() - started:.1f}s")
            _remove_older(IMAGE_REPOSITORY, keep={ref, IMAGE_ALIAS})
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auxip_testing.app_image", description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--base-only", action="store_true", help="build only the base image; print it and its digest")
    what.add_argument("--context", type=Path, metavar="DIR", help="write the build context into DIR (must not exist)")
    what.add_argument("--rebuild", action="store_true", help="build the image again even if its tag exists")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.base_only:
        ref = ensure_base()
        log(f"{ref} ready ({time.monotonic() - started:.1f}s), digest {image_digest(ref)}")
    elif args.context is not None:
        ref = str(prepare_context(args.context))
        log(f"context ready ({time.monotonic() - started:.1f}s); build it with:")
        base = pinned_base()
        print(" ".join(build_command(base, image_ref(base), args.context)), file=sys.stderr)
    else:
        ref = ensure_image(rebuild=args.rebuild)
        log(f"{ref} ready ({time.monotonic() - started:.1f}s), digest {image_digest(ref)}")
    print(ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

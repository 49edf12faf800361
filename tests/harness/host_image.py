"""Build and cache the Debian 12 systemd base image that podman test hosts and molecule scenarios boot.

No container registry is reachable, so the image is made locally: debootstrap a minimal bookworm root filesystem from
Debian's mirror and `podman import` it. The tag carries IMAGE_REVISION and a hash of everything that shapes the root
filesystem, so changing the package list (or the mirror/suite) builds a new image instead of reusing a stale one.

CLI (prints the image reference on stdout, progress and timing on stderr):

    python -m auxip_testing.host_image            # build if missing
    python -m auxip_testing.host_image --rebuild  # remove and build again
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from auxip_testing.cache import cache_root

#: Bump by hand to force a rebuild for changes the hash below cannot see (e.g. the customisations in _customise).
IMAGE_REVISION = "v1"
SUITE = "bookworm"
MIRROR = os.environ.get("AUXIP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: python3-apt is included because Ansible's apt module needs it and would otherwise install it on every first run.
PACKAGES: tuple[str, ...] = (
    "python3",
    "python3-apt",
    "systemd",
    "systemd-sysv",
    "openssh-server",
    "iproute2",
    "ca-certificates",
    "sudo",
)
REPOSITORY = "localhost/auxip-testhost"
#: Moving alias of the newest build, for people running molecule by hand without AUXIP_TESTHOST_IMAGE.
ALIAS = f"{REPOSITORY}:{SUITE}"

#: Units that cannot work inside a container (no udev, no real consoles, read-only /proc/sys, no kernel modules).
#: Masking them lets `systemctl is-system-running` report "running" instead of "degraded".
_MASKED_UNITS = (
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-modules-load.service",
    "systemd-sysctl.service",
    "systemd-remount-fs.service",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "getty.target",
    "console-getty.service",
    "systemd-firstboot.service",
    "systemd-hwdb-update.service",
    # Background apt runs would take the dpkg lock while a role under test installs packages.
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
)


def log(message: str) -> None:
    print(f"host_image: {message}", file=sys.stderr, flush=True)


def image_tag() -> str:
    digest = hashlib.sha256("\n".join([SUITE, MIRROR, *sorted(PACKAGES), *_MASKED_UNITS]).encode()).hexdigest()[:10]
    return f"{SUITE}-{IMAGE_REVISION}-{digest}"


def image_ref() -> str:
    """The full reference of the image for the current package list, whether built or not."""
    return f"{REPOSITORY}:{image_tag()}"


def require_tools() -> None:
    """Fail (never skip) with the apt packages to install when a tool is missing."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [tool for tool in ("podman", "debootstrap", "runc") if shutil.which(tool, path=path) is None]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not found: run 'apt-get install -y podman runc debootstrap uidmap slirp4netns "
            "fuse-overlayfs' and then 'bash tests/harness/podman_setup.sh'"
        )


def image_exists(ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One debootstrap builder at a time across processes (both images write the same .deb cache)."""
    lock_path = cache_root() / "host-image.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _customise(rootfs: Path) -> None:
    """Make the root filesystem boot cleanly as a container and stay small."""
    # An empty machine-id makes systemd generate a fresh one per container instead of every host sharing one.
    (rootfs / "etc/machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (rootfs / "var/lib/dbus/machine-id").unlink()
    for unit in _MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    # Journald to memory only: nothing to persist in a throw-away host, and fewer writes on the overlay.
    dropin = rootfs / "etc/systemd/journald.conf.d/auxip-testhost.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Journal]\nStorage=volatile\n")
    # The package cache is useless in the image; apt inside a host downloads again from the mirror.
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    # debootstrap writes only `main` of the release; updates and security give roles current packages.
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb {MIRROR.replace('/debian', '/debian-security')} {SUITE}-security main\n"
    )


def build(ref: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=".host-image.", dir=cache_root()))
    rootfs = work / "rootfs"
    # .deb files are kept between builds so a rebuild after a package-list change downloads only what is new.
    debs = cache_root() / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        log(f"debootstrap {SUITE} from {MIRROR} ({len(PACKAGES)} extra packages) into {rootfs}")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                f"--cache-dir={debs}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            check=True,
            stdout=sys.stderr,  # progress lines go to the terminal; stdout is kept for the image reference
            env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"},
        )
        log(f"debootstrap done in {time.monotonic() - started:.0f}s; customising and importing as {ref}")
        _customise(rootfs)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            subprocess.run(
                [
                    "podman",
                    "import",
                    "--change",
                    'CMD ["/sbin/init"]',
                    # systemd shuts down cleanly on SIGRTMIN+3, not on podman's default SIGTERM.
                    "--change",
                    "STOPSIGNAL SIGRTMIN+3",
                    "--change",
                    f"LABEL org.auxip.testhost.packages={','.join(PACKAGES)}",
                    "--message",
                    f"auxip test host {image_tag()}",
                    "-",
                    ref,
                ],
                stdin=tar.stdout,
                stdout=subprocess.DEVNULL,
                check=True,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError(f"tar of {rootfs} failed with {tar.returncode}")
        subprocess.run(["podman", "tag", ref, ALIAS], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"built {ref} in {time.monotonic() - started:.0f}s")
    _remove_older_builds(keep={ref, ALIAS})


def _remove_older_builds(keep: set[str]) -> None:
    """Drop images of earlier package lists (about 200 MB each); ones still used by a container stay."""
    listing = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY],
        capture_output=True,
        text=True,
        check=False,
    )
    for old in sorted(set(listing.stdout.split()) - keep):
        removed = subprocess.run(["podman", "rmi", old], capture_output=True, text=True, check=False)
        log(f"removed older image {old}" if removed.returncode == 0 else f"kept {old}: {removed.stderr.strip()}")


def ensure_image(rebuild: bool = False) -> str:
    """Return the reference of the test host image, building it first if podman does not have it."""
    require_tools()
    ref = image_ref()
    if not rebuild and image_exists(ref):
        return ref
    with build_lock():
        if rebuild and image_exists(ref):
            subprocess.run(["podman", "rmi", "--force", ref], check=True, stdout=subprocess.DEVNULL)
        if not image_exists(ref):
            build(ref)
    return ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auxip_testing.host_image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="remove the image for this tag and build it again")
    parser.add_argument("--print-ref", action="store_true", help="print the reference without building")
    args = parser.parse_args(argv)
    if args.print_ref:
        print(image_ref())
        return 0
    started = time.monotonic()
    ref = ensure_image(rebuild=args.rebuild)
    log(f"{ref} ready ({time.monotonic() - started:.1f}s)")
    print(ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

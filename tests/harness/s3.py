"""A real S3-compatible server on loopback: S3Proxy over its filesystem backend.

Why S3Proxy: it is one self-contained jar on Maven Central (fetched and cached by `mvn dependency:get`, ~55 MB), and it
is a real HTTP server implementing the S3 wire protocol (SigV2/SigV4 signatures, multipart uploads with S3's ETags and
5 MiB minimum part size, ListObjectsV2, Content-MD5 and flexible-checksum verification) over a plain directory.
Alternatives were rejected: MinIO and versitygw would have to be compiled from the Go module proxy (long builds on
2 cores) or are not served there at all, and moto is an in-process library fake, not a server.

Why 4.x and not 2.6.0: S3Proxy 2.6.0 answers `NotImplemented` to the `x-amz-checksum-crc32` header that botocore
>= 1.36 sends on every PutObject by default, so stock boto3 cannot upload to it. 4.1.0 stores and verifies
x-amz-checksum-{crc32,sha1,sha256} (BadDigest on mismatch), returns them with `ChecksumMode=ENABLED`, and still runs
on Java 17. CRC32C/CRC64NVME are untested: botocore only computes them with the optional `awscrt` package.

`run_s3proxy()` is usable outside pytest (benchmarks); `s3_server` wraps it for a test session.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config

from auxip_testing.cache import maven_artifact
from auxip_testing.process import ManagedProcess, free_port, port_open, require_binary, running, scratch_dir

S3PROXY_VERSION = "4.1.0"
S3PROXY_COORDINATES = f"org.gaul:s3proxy:{S3PROXY_VERSION}:jar:jar-with-dependencies"
HOST = "127.0.0.1"
REGION = "us-east-1"
STOP_GRACE = 0.5

# A short-lived test server on 2 shared cores: C1 only and the serial GC answer in ~0.8 s instead of ~1.2 s and keep
# the JVM small; -UsePerfData avoids littering /tmp/hsperfdata_*. Callers measuring throughput can pass their own.
DEFAULT_JVM_FLAGS: tuple[str, ...] = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
    "-Xms32m",
    "-Xmx256m",
    "-XX:-UsePerfData",
)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    basedir: Path

    def client(self, **config: Any) -> BaseClient:
        """A boto3 S3 client for this server; `config` entries override the botocore `Config` defaults."""
        settings: dict[str, Any] = {
            "s3": {"addressing_style": "path"},  # virtual-host style would need wildcard DNS for bucket names
            "signature_version": "s3v4",
            "retries": {"max_attempts": 2, "mode": "standard"},
            **config,
        }
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**settings),
        )

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    @staticmethod
    def fresh_bucket_name(prefix: str = "auxip-test") -> str:
        """A bucket name no other test uses; the session shares one server, so tests must not reuse names."""
        return f"{prefix}-{secrets.token_hex(4)}"


def bucket_objects(client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under `prefix` (keys relative to it) with its bytes."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [entry["Key"] for page in pages for entry in page.get("Contents", [])]
    return {key.removeprefix(prefix): client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def upload_tree(client: Any, bucket: str, local: Path, key: str) -> None:
    """Upload a file to `key`, or a folder's files below `key/` (an S3 source lists them as one SAFE entry)."""
    if local.is_dir():
        for member in sorted(p for p in local.rglob("*") if p.is_file()):
            client.upload_file(str(member), bucket, f"{key}/{member.relative_to(local).as_posix()}")
    else:
        client.upload_file(str(local), bucket, key)


def _properties(endpoint: str, identity: str, credential: str, basedir: Path) -> str:
    # jclouds.identity/credential are mandatory for every backend even though filesystem-nio2 ignores them;
    # filesystem-nio2 replaces the deprecated `filesystem` provider (which S3Proxy warns about).
    return "\n".join(
        [
            f"s3proxy.endpoint={endpoint}",
            "s3proxy.authorization=aws-v2-or-v4",
            f"s3proxy.identity={identity}",
            f"s3proxy.credential={credential}",
            "jclouds.provider=filesystem-nio2",
            f"jclouds.identity={identity}",
            f"jclouds.credential={credential}",
            f"jclouds.filesystem.basedir={basedir}",
            "",
        ]
    )


def _probe(server: S3Server) -> Callable[[], bool]:
    # One client for all polls (building one costs ~0.1 s); no retries so each poll is a single request.
    client = server.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)

    def ready() -> bool:
        if not port_open(server.port):
            return False
        client.list_buckets()  # signed request: proves the credentials and the backend, not just the socket
        client.close()  # an idle keep-alive connection would make Jetty's graceful stop wait for its timeout
        return True

    return ready


def _new_server(workdir: Path) -> S3Server:
    basedir = workdir / "data"
    basedir.mkdir(exist_ok=True)
    return S3Server(
        endpoint_url=f"http://{HOST}:{free_port()}",
        access_key=f"AUXIP{secrets.token_hex(8).upper()}",
        secret_key=secrets.token_urlsafe(30),
        region=REGION,
        basedir=basedir,
    )


def _write_properties(workdir: Path, server: S3Server) -> Path:
    properties = workdir / "s3proxy.properties"
    properties.touch(mode=0o600)  # holds the secret key
    properties.write_text(_properties(server.endpoint_url, server.access_key, server.secret_key, server.basedir))
    return properties


@contextlib.contextmanager
def run_s3proxy(
    workdir: Path | None = None, timeout: float = 60.0, jvm_flags: Sequence[str] = DEFAULT_JVM_FLAGS
) -> Iterator[S3Server]:
    """Start S3Proxy storing objects under `workdir/data`, wait for a signed ListBuckets to succeed, stop on exit."""
    java, jar = require_binary("java", "openjdk-17-jre-headless", "S3Proxy"), maven_artifact(S3PROXY_COORDINATES)
    with scratch_dir("auxip-s3proxy-", workdir) as root:
        server = _new_server(root)
        process = ManagedProcess(
            name=f"s3proxy:{server.port}",
            argv=[java, *jvm_flags, "-jar", str(jar), "--properties", str(_write_properties(root, server))],
            log_path=root / "s3proxy.log",
            env={"LOG_LEVEL": "info"},
            cwd=root,
        )
        with running(process, _probe(server), timeout):
            try:
                yield server
            finally:
                # Jetty's graceful stop waits ~2 s for clients' idle keep-alive connections; every request has
                # already been written to the backend directory, so a short grace before SIGKILL loses nothing.
                process.stop(grace=STOP_GRACE)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with run_s3proxy(tmp_path_factory.mktemp("s3proxy")) as server:
        yield server

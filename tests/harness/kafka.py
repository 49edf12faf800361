"""A single-node Apache Kafka 4.x (KRaft, no ZooKeeper) on loopback, built from Maven Central jars.

Kafka publishes no server distribution on Maven Central, but the broker is the `kafka_2.13` jar plus its runtime
dependencies, which Maven resolves (~45 MB, cached by version under `cache_root()`). Kafka 4.x logs through SLF4J 1.x
to Log4j 2 but declares no binding, so `log4j-slf4j-impl` (at the log4j-core version Kafka itself depends on) is
added, otherwise the broker log would be empty. `kafka.Kafka` is the broker main class and `kafka.tools.StorageTool`
(still in the core jar in 4.x) formats the log directory.

One process is both controller and broker; the quorum is a dynamic one bootstrapped with `format --standalone`.

`run_kafka()` works outside pytest (benchmarks, demos); the `kafka` fixture wraps it and yields bootstrap servers.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from auxip_testing.cache import cache_root, maven_classpath
from auxip_testing.plugin import show_progress
from auxip_testing.process import (
    ManagedProcess,
    ServiceStartError,
    free_port,
    port_open,
    require_binary,
    running,
    scratch_dir,
)

KAFKA_VERSION = "4.4.0"
# The Log4j 2 version kafka_2.13 4.4.0 depends on; the SLF4J binding must match log4j-core exactly.
LOG4J_VERSION = "2.25.5"
COORDINATES = [
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
]
HOST = "127.0.0.1"
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"

# A short-lived test broker on 2 shared cores: C1 only and the serial GC start the JVM faster and keep it small;
# -UsePerfData avoids littering /tmp/hsperfdata_*. Benchmarks measuring throughput should pass their own flags.
DEFAULT_JVM_FLAGS: tuple[str, ...] = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
    "-Xms64m",
    "-Xmx512m",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

# Broker defaults assume 3 replicas and many partitions; a single node needs RF 1 for its internal topics, and one
# partition each makes the first consumer group / transaction / share group coordinator come up without delay.
SINGLE_NODE_SETTINGS = {
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "num.partitions": "1",
    # Tests join a group right after creating it: don't wait 3 s for more members that never come.
    "group.initial.rebalance.delay.ms": "0",
}

LOG4J2_CONFIG = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
# Every client/producer config is dumped at INFO on each start; keep the log readable in failure reports.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
"""


@dataclass(frozen=True)
class KafkaBroker:
    bootstrap_servers: str
    controller_port: int
    cluster_id: str
    log_dir: Path

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.rsplit(":", 1)[1])


def kafka_classpath() -> Path:
    """The directory of broker jars, resolved once per Kafka version (prints progress on that first run)."""
    key = f"kafka-{KAFKA_VERSION}-log4j-{LOG4J_VERSION}"
    first_run = not (cache_root() / key).is_dir()
    if first_run:
        print(f"auxip_testing: resolving Kafka {KAFKA_VERSION} jars (~45 MB) from Maven Central ...", file=sys.stderr)
    started = time.monotonic()
    lib = maven_classpath(key, COORDINATES)
    if first_run:
        print(f"auxip_testing: Kafka jars cached in {lib} ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    return lib


def random_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints: 16 random bytes, URL-safe base64 without padding.

    Kafka's own generator rejects ids starting with '-' because the CLI would read them as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _server_properties(broker: KafkaBroker) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{broker.controller_port}",
        "listeners": f"PLAINTEXT://{broker.bootstrap_servers},CONTROLLER://{HOST}:{broker.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{broker.bootstrap_servers}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(broker.log_dir),
        **SINGLE_NODE_SETTINGS,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java_argv(classpath: Path, jvm_flags: Sequence[str], log4j_config: Path) -> list[str]:
    return [
        require_binary("java", "openjdk-17-jre-headless", "Kafka 4.x (Java 17+)"),
        *jvm_flags,
        f"-Dlog4j2.configurationFile={log4j_config}",
        "-cp",
        f"{classpath}/*",
    ]


def _format_storage(base_argv: list[str], properties: Path, cluster_id: str, log: Path) -> None:
    """Write meta.properties and the bootstrap checkpoint; the broker refuses to start on an unformatted dir."""
    argv = [*base_argv, STORAGE_TOOL_MAIN, "format", "--config", str(properties), "--cluster-id", cluster_id]
    argv.append("--standalone")  # this node is the single voter of a dynamic (KIP-853) controller quorum
    with log.open("ab") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise ServiceStartError(f"kafka-storage format failed ({result.returncode}):\n{tail}")


def _probe(broker: KafkaBroker) -> Callable[[], bool]:
    def ready() -> bool:
        # librdkafka logs every refused connection to stderr, so only build a client once the socket listens.
        if not port_open(broker.port):
            return False
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers, "socket.timeout.ms": 2000})
        metadata = admin.list_topics(timeout=2)  # a real Metadata request answered by the broker
        return bool(metadata.brokers)

    return ready


@contextlib.contextmanager
def run_kafka(
    workdir: Path | None = None, timeout: float = 60.0, jvm_flags: Sequence[str] = DEFAULT_JVM_FLAGS
) -> Iterator[KafkaBroker]:
    """Format a fresh KRaft log dir, start the combined broker+controller, wait for a metadata answer, stop on exit."""
    classpath = kafka_classpath()
    with scratch_dir("auxip-kafka-", workdir) as root:
        broker = KafkaBroker(
            bootstrap_servers=f"{HOST}:{free_port()}",
            controller_port=free_port(),
            cluster_id=random_cluster_id(),
            log_dir=root / "data",
        )
        properties = root / "server.properties"
        properties.write_text(_server_properties(broker))
        log4j_config = root / "log4j2.properties"
        log4j_config.write_text(LOG4J2_CONFIG)
        log = root / "kafka.log"
        base_argv = _java_argv(classpath, jvm_flags, log4j_config)
        _format_storage(base_argv, properties, broker.cluster_id, log)
        process = ManagedProcess(
            name=f"kafka:{broker.port}", argv=[*base_argv, BROKER_MAIN, str(properties)], log_path=log, cwd=root
        )
        with running(process, _probe(broker), timeout):
            yield broker


@pytest.fixture(scope="session")
def kafka(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers (`host:port`) of a single-node Kafka shared by the test session."""
    with show_progress(request.config):
        kafka_classpath()
    with run_kafka(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker.bootstrap_servers

"""The Kafka bus's client settings: TLS (Strimzi's listener, mutual TLS with a KafkaUser) and prefixed groups.

No TLS broker runs in the suite (its Kafka listens in plaintext on loopback): these check what librdkafka is given.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from auxip.catalog.migrate import make_engine
from auxip.ingest.bus import KafkaBus, open_bus
from auxip.ingest.settings import BusSettings

CERTS = "/var/run/secrets/auxip/kafka"


def test_mutual_tls_settings_reach_every_client() -> None:
    settings = BusSettings.model_validate(
        {
            "url": "kafka://auxip-kafka-bootstrap.kafka.svc:9093",
            "topic_prefix": "prod.",
            "tls": {"ca_file": f"{CERTS}/ca.crt", "cert_file": f"{CERTS}/user.crt", "key_file": f"{CERTS}/user.key"},
        }
    )
    bus = open_bus(settings, make_engine("sqlite://"))
    assert isinstance(bus, KafkaBus)
    assert bus.client_config({"group.id": bus.group_id("routing")}) == {
        "bootstrap.servers": "auxip-kafka-bootstrap.kafka.svc:9093",
        "client.id": "auxip",
        "security.protocol": "SSL",
        "ssl.ca.location": f"{CERTS}/ca.crt",
        "ssl.certificate.location": f"{CERTS}/user.crt",
        "ssl.key.location": f"{CERTS}/user.key",
        "group.id": "prod.routing",
    }


def test_server_authenticated_tls_and_plaintext() -> None:
    tls_only = KafkaBus("k:9093", tls=BusSettings.model_validate({"tls": {"ca_file": "/ca.crt"}}).tls)
    assert tls_only.client_config() == {
        "bootstrap.servers": "k:9093", "client.id": "auxip", "security.protocol": "SSL", "ssl.ca.location": "/ca.crt"
    }  # fmt: skip
    assert KafkaBus("127.0.0.1:9092").client_config() == {"bootstrap.servers": "127.0.0.1:9092", "client.id": "auxip"}


def test_a_certificate_without_its_key_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="tls: give both cert_file and key_file"):
        BusSettings.model_validate({"url": "kafka://k:9093", "tls": {"ca_file": "/ca", "cert_file": "/user.crt"}})

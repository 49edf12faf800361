"""Building blocks of the `apps` stack configuration models: the strict model base, quantities, pinned images and
network endpoints. Shared by the hosted applications' models (`config.py`) and the AUXIP's own (`service_config.py`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
CREDENTIALS_REFERENCE = r"^(env|file|vault):.+$"
CPU_QUANTITY = r"^([1-9][0-9]*m|[0-9]+(\.[0-9]{1,3})?)$"
MEMORY_QUANTITY = r"^[1-9][0-9]*(Ki|Mi|Gi|Ti)$"
HOSTNAME = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
#: A repository path and a tag and/or digest; the registry comes from `registryPrefix`, never from here.
IMAGE_REFERENCE = re.compile(
    r"^(?P<path>[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_SCHEME_PORTS = {"sftp": 22, "ftp": 21, "ftps": 21, "http": 80, "https": 443, "webdav": 80, "webdavs": 443}
_SCHEME_PORTS |= {"odata": 80, "odatas": 443, "s3": 443}
_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class StrictModel(BaseModel):
    # Same conventions as StackConfig: unknown keys are errors, keys are camelCase as in Pulumi config.
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    return int(quantity[:-2]) * _MEMORY_UNITS[quantity[-2:]]


def default_port(url: str) -> int:
    """The port a URL reaches: its own, else its scheme's well-known port."""
    parts = urlsplit(url)
    return parts.port or _SCHEME_PORTS[parts.scheme]


def not_world(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if network.prefixlen == 0:
        raise ValueError("0.0.0.0/0 is not allowed here: give the peer's own addresses")
    return network


def remote_url(value: str, schemes: Iterable[str]) -> str:
    """`value` if it is a URL of one of `schemes` naming a remote host and no credentials."""
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"unsupported scheme {parts.scheme!r}; use one of {', '.join(sorted(schemes))}")
    if not parts.hostname:
        raise ValueError(f"{value!r} names no host: the NetworkPolicy needs a remote peer")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the URL: give a `credentials` reference (env:/file:/vault:)")
    return value


def pinned_image(value: str) -> str:
    """`value` if it is a repository path (no registry: it is pulled through `registryPrefix`) with a version tag or
    a digest."""
    first = value.split("/", 1)[0]
    if "/" in value and ("." in first or ":" in first or first == "localhost"):
        raise ValueError(f"{value!r} names a registry: give the repository path, it is pulled via registryPrefix")
    match = IMAGE_REFERENCE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a repository path with a tag or digest")
    if not match["digest"] and match["tag"] in (None, "latest"):
        raise ValueError(f"{value!r} is not pinned: add a version tag (not latest) or an @sha256 digest")
    return value


def image_version(value: str) -> str:
    """A DNS-label-safe version of a pinned image reference: its tag, else the start of its digest."""
    match = IMAGE_REFERENCE.match(value)
    assert match is not None  # only called on references `pinned_image` accepted
    version = match["tag"] or match["digest"].removeprefix("sha256:")[:12]
    return re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")[:40]


class ComputeAmounts(StrictModel):
    cpu: str = Field(pattern=CPU_QUANTITY)
    memory: str = Field(pattern=MEMORY_QUANTITY)

    def fits_in(self, other: ComputeAmounts, times: int = 1) -> bool:
        return millicores(self.cpu) * times <= millicores(other.cpu) and memory_bytes(
            self.memory
        ) * times <= memory_bytes(other.memory)


class AppResources(StrictModel):
    requests: ComputeAmounts
    limits: ComputeAmounts

    @model_validator(mode="after")
    def _requests_within_limits(self) -> AppResources:
        if not self.requests.fits_in(self.limits):
            raise ValueError("requests must not exceed limits")
        return self

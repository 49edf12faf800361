"""A source as configured (`sources[]` in the service configuration): typed and validated at start."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from auxip.validation import Regex, scheme_in

SCHEMES = ("file", "sftp", "ftp", "ftps", "http", "https", "webdav", "webdavs", "s3", "odata", "odatas")
#: Source kinds whose adapters can delete or move an entry after routing (`PostDeliverySource`): an HTTP listing
#: and an OData service are read-only.
POST_DELIVERY_SCHEMES = ("file", "sftp", "ftp", "ftps", "s3", "webdav", "webdavs")


class SourceSettings(BaseModel):
    """One external source. Credentials are a reference (`env:PREFIX`, `file:/path`, `vault:kv/path`), never a value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Unique; routes refer to it.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    #: `file:///dir`, `sftp://host:port/dir`, `ftp://`, `ftps://` (explicit TLS), `http(s)://host/dir/` (directory
    #: listing), `webdav(s)://host/dir/`, `s3://bucket/prefix`, `odata(s)://host/odata/v1` (another AUXIP or PRIP).
    url: Annotated[str, AfterValidator(scheme_in(SCHEMES, "source"))]
    #: Seconds between listings (local directories also react to inotify at once).
    poll_interval: float = Field(30.0, gt=0, le=86400)
    #: Regular expressions on the entry name; an entry is taken when one matches (all entries when empty).
    include: list[Regex] = []
    #: Product types taken from this source (all when empty): the name's type field must be one of them.
    product_types: list[str] = []
    #: Entries modified (or published, for OData) before this instant are ignored.
    ignore_before: datetime | None = None
    #: Parallel transfers from this source.
    concurrency: int = Field(2, ge=1, le=64)
    #: Bytes per second for this source's transfers together; none when unset.
    bandwidth_limit: int | None = Field(None, ge=1024)
    credentials: str | None = Field(None, pattern=r"^(env|file|vault):.+$")
    #: TLS certificate verification (on unless written off).
    verify_tls: bool = True
    #: S3 sources: the endpoint of an S3-compatible server (none: AWS's regional endpoint).
    endpoint_url: str | None = None
    region: str = "us-east-1"
    #: A CA bundle for TLS sources that use a private CA.
    ca_file: str | None = None
    #: A file counts as complete once unchanged for this long (inotify close events make local files eligible at once).
    settle_seconds: float = Field(2.0, ge=0, le=3600)
    #: Source priority among several that offer the same product types (failover: lower is tried first).
    priority: int = 100
    #: OData sources: how far back each PublicationDate window reaches before the last one seen (late commits).
    overlap_seconds: float = Field(300.0, ge=0)
    #: OData sources: the product filter added to the PublicationDate window, e.g. `startswith(Name,'S1A_')`.
    odata_filter: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    def accepts(self, name: str) -> bool:
        return not self.include or any(re.search(pattern, name) for pattern in self.include)

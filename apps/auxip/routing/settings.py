"""Routes as configured (`routes[]`): a trigger and one or more targets, validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from auxip.validation import Regex, scheme_in

TARGET_SCHEMES = ("file", "sftp", "ftp", "ftps", "s3", "http", "https", "inbox")
#: Where a hosted application's inbox can be: a directory it mounts, or a prefix of the exchange bucket.
INBOX_SCHEMES = ("file", "s3")
#: The hosted application names the platform accepts (one path segment, never `.` or `..`).
APP_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceTrigger(_Section):
    """Every file of this source (a `sources[]` name) is routed — after integrity and antivirus, never unscanned."""

    source: str


class PublishedTrigger(_Section):
    """Products announced by `product.published` that match every given criterion."""

    event: Literal["product.published"] = "product.published"
    #: Product types or fnmatch patterns (`AUX_*`); all when empty.
    product_types: list[str] = []
    #: A regular expression searched in the product name.
    name_pattern: Regex | None = None
    #: platformSerialIdentifier values (`A`, `B`, ...); all when empty.
    platforms: list[str] = []
    #: Attribute name -> required value (string comparison).
    attributes: dict[str, str] = {}


class TargetSettings(_Section):
    """Where a route delivers: `sftp://`, `ftp://`, `ftps://`, `s3://bucket/prefix`, `file:///dir`, `http(s)://`
    (PUT upload), or `inbox://<hosted application>` (the inbox of an application hosted on the platform)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    url: Annotated[str, AfterValidator(scheme_in(TARGET_SCHEMES, "target"))]
    credentials: str | None = Field(None, pattern=r"^(env|file|vault):.+$")
    verify_tls: bool = True
    ca_file: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    #: Verify the checksum after upload where the target can tell it (S3 ETag, a remote md5sum over SFTP).
    verify_checksum: bool = True
    concurrency: int = Field(4, ge=1, le=64)


class InboxSettings(_Section):
    """Where `inbox://<app>` delivers: `s3://bucket/prefix/` (the exchange bucket's `<prefix>/<app>/inbox/`, with the
    S3 target) or `file:///dir` (a directory the application mounts, with the local target)."""

    url: Annotated[str, AfterValidator(scheme_in(INBOX_SCHEMES, "inbox"))]
    credentials: str | None = Field(None, pattern=r"^(env|file|vault):.+$")
    #: S3 inboxes: the endpoint of an S3-compatible server (none: AWS's regional endpoint).
    endpoint_url: str | None = None
    region: str = "us-east-1"
    verify_tls: bool = True
    ca_file: str | None = None


def inbox_app(url: str) -> str | None:
    """The application an `inbox://<app>` URL names; None for any other URL."""
    parts = urlsplit(url)
    return parts.netloc if parts.scheme == "inbox" else None


def resolve_inbox(target: TargetSettings, inboxes: Mapping[str, InboxSettings]) -> TargetSettings:
    """`inbox://<app>` as the target its configured inbox is (same name, concurrency and checksum rule, the inbox's
    URL and access); any other target, and an application without an entry in `inboxes`, as it is (the latter
    then resolves to `<inbox_root>/<app>/inbox/` on this host)."""
    app = inbox_app(target.url)
    if app is None or app not in inboxes:
        return target
    fields = target.model_dump(exclude={"url", "credentials", "endpoint_url", "region", "verify_tls", "ca_file"})
    return TargetSettings.model_validate({**fields, **inboxes[app].model_dump()})


class PostDelivery(_Section):
    """What to do at the source once every target has the file (never before)."""

    action: Literal["none", "delete", "move"] = "none"
    #: With `move`: a folder of the source (relative to its root) the file is moved to.
    move_to: str | None = None

    @model_validator(mode="after")
    def _move_needs_folder(self) -> PostDelivery:
        if (self.action == "move") != (self.move_to is not None):
            raise ValueError("post_delivery.move_to is required with action: move, and only then")
        if self.move_to is not None:
            parts = self.move_to.strip("/").split("/")
            if self.move_to.startswith("/") or "\\" in self.move_to or any(p in ("", ".", "..") for p in parts):
                raise ValueError(
                    f"post_delivery.move_to: {self.move_to!r} must be a folder below the source's root, "
                    "relative, without `.` or `..`"
                )
        return self


def _trigger_kind(value: object) -> str:
    """A trigger naming a `source` is a source trigger, any other an event trigger: errors then speak of one kind."""
    if isinstance(value, SourceTrigger) or (isinstance(value, dict) and "source" in value):
        return "source"
    return "event"


class RouteSettings(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    #: `{source: <name>}` or `{event: product.published, product_types, name_pattern, platforms, attributes}`.
    trigger: Annotated[
        Annotated[SourceTrigger, Tag("source")] | Annotated[PublishedTrigger, Tag("event")],
        Discriminator(_trigger_kind),
    ]
    #: One delivery per file and target, exactly once.
    targets: list[TargetSettings] = Field(min_length=1)
    post_delivery: PostDelivery = PostDelivery()
    #: Failed attempts per (file, target) before the delivery is dead-lettered (listed and retried by the CLI).
    max_attempts: int = Field(10, ge=1)
    retry_base_seconds: float = Field(5.0, gt=0)
    retry_max_seconds: float = Field(900.0, gt=0)

    @model_validator(mode="after")
    def _unique_targets(self) -> RouteSettings:
        names = [target.name for target in self.targets]
        if len(names) != len(set(names)):
            raise ValueError(f"route {self.name}: target names must be unique, got {names}")
        return self

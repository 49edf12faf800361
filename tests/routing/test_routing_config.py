"""Routing configuration: which sources may have a post-delivery action, `move_to`, and `inbox://` resolution."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxip.config import AuxipConfig, ConfigError, load_config
from auxip.deploy.exchanges import routing_document
from auxip.ingest.sources.settings import POST_DELIVERY_SCHEMES
from auxip.routing.settings import PostDelivery
from auxip.routing.targets.factory import open_target
from auxip.routing.targets.inbox import InboxTarget
from auxip.routing.targets.s3 import S3Target
from auxip_platform.infra.stack_config import load_stack_file
from auxip_testing.pulumi_mocks import REPO_ROOT

SOURCE_URLS = {
    "file": "file:///srv/outbox",
    "sftp": "sftp://mp@mp.example:22/outbox",
    "ftp": "ftp://mp.example/outbox",
    "ftps": "ftps://mp.example/outbox",
    "s3": "s3://exchange/apps/mp/outbox/fos/",
    "webdav": "webdav://mp.example/outbox/",
    "webdavs": "webdavs://mp.example/outbox/",
    "http": "http://mp.example/outbox/",
    "https": "https://mp.example/outbox/",
    "odata": "odata://auxip.example/odata/v1",
    "odatas": "odatas://auxip.example/odata/v1",
}


def _config(tmp_path: Path, **document: Any) -> Path:
    path = tmp_path / "auxip.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "scanner": "disabled", **document}))
    return path


def _route(source: str, post_delivery: dict[str, Any], url: str = "file:///srv/fos") -> dict[str, Any]:
    return {"name": "out", "trigger": {"source": source}, "targets": [{"name": "fos", "url": url}],
            "post_delivery": post_delivery}  # fmt: skip


@pytest.mark.parametrize("scheme", sorted(SOURCE_URLS))
@pytest.mark.parametrize("action", [{"action": "delete"}, {"action": "move", "move_to": "done"}])
def test_post_delivery_only_for_sources_that_can_do_it(tmp_path: Path, scheme: str, action: dict[str, Any]) -> None:
    path = _config(
        tmp_path, sources=[{"name": "outbox", "url": SOURCE_URLS[scheme]}], routes=[_route("outbox", action)]
    )
    if scheme in POST_DELIVERY_SCHEMES:
        assert load_config(path, environ={}).routes[0].post_delivery.action == action["action"]
        return
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    message = str(error.value)
    assert "routes.0.post_delivery.action:" in message  # the key to fix
    assert f"source 'outbox' is {scheme}, which cannot delete or move files" in message
    # `none` (the default) is always fine.
    none = _config(tmp_path, sources=[{"name": "outbox", "url": SOURCE_URLS[scheme]}],
                   routes=[_route("outbox", {"action": "none"})])  # fmt: skip
    assert load_config(none, environ={}).routes[0].post_delivery.action == "none"


@pytest.mark.parametrize("folder", ["/done", "../done", "done/../..", "a//b", ".", "done\\x"])
def test_move_to_stays_below_the_source_root(folder: str) -> None:
    with pytest.raises(ValueError, match="must be a folder below the source's root"):
        PostDelivery(action="move", move_to=folder)
    assert PostDelivery(action="move", move_to="done/2024/").move_to == "done/2024/"


S3_INBOX = {"url": "s3://exchange/apps/mp/inbox/", "endpoint_url": "https://s3.example", "region": "eu-west-1",
            "credentials": "env:EXCHANGE"}  # fmt: skip


def test_inbox_target_resolves_to_the_configured_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_ACCESS_KEY", "exchange-key")
    monkeypatch.setenv("EXCHANGE_SECRET_KEY", "exchange-secret")
    routes = [
        {"name": "to-mp", "trigger": {"event": "product.published"},
         "targets": [{"name": "mp-inbox", "url": "inbox://mp", "concurrency": 2},
                     {"name": "sra-inbox", "url": "inbox://sra"}]},
    ]  # fmt: skip
    config = load_config(_config(tmp_path, inboxes={"mp": S3_INBOX}, routes=routes), environ={})
    mp, sra = config.routes[0].targets
    # The S3 inbox: the exchange bucket with its own access; name and per-target settings are the route's.
    assert (mp.name, mp.url, mp.endpoint_url, mp.region, mp.credentials, mp.concurrency) == (
        "mp-inbox", "s3://exchange/apps/mp/inbox/", "https://s3.example", "eu-west-1", "env:EXCHANGE", 2,
    )  # fmt: skip
    assert isinstance(open_target(mp, config.inbox_dir), S3Target)
    # An application without an entry: the local layout under inbox_root, as before.
    assert sra.url == "inbox://sra"
    adapter = open_target(sra, config.inbox_dir)
    assert isinstance(adapter, InboxTarget)
    assert adapter.directory == config.data_dir / "apps" / "sra" / "inbox"


def test_a_local_inbox_entry_becomes_a_directory_target(tmp_path: Path) -> None:
    routes = [{"name": "to-mp", "trigger": {"event": "product.published"},
               "targets": [{"name": "mp-inbox", "url": "inbox://mp"}]}]  # fmt: skip
    inbox = tmp_path / "mp-volume"
    config = load_config(_config(tmp_path, inboxes={"mp": {"url": inbox.as_uri()}}, routes=routes), environ={})
    assert config.routes[0].targets[0].url == inbox.as_uri()


@pytest.mark.parametrize(
    ("inboxes", "key"),
    [
        ({"mp": {"url": "sftp://mp.example/inbox"}}, "inboxes.mp.url"),
        ({"mp": {"url": "s3://b/p/", "secret": "x"}}, "inboxes.mp.secret"),
        ({"MP!": {"url": "s3://b/p/"}}, "inboxes"),
    ],
)
def test_bad_inboxes_name_their_key(tmp_path: Path, inboxes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"  {key}: ")):
        load_config(_config(tmp_path, inboxes=inboxes), environ={})


def test_the_compiled_routes_configmap_loads_and_every_inbox_resolves_to_s3(tmp_path: Path) -> None:
    """`auxip-routes` (sources, routes, inboxes) is an AUXIP configuration fragment: no `inbox://` is left over."""
    apps = load_stack_file(REPO_ROOT / "Pulumi.prod.yaml").apps
    document = routing_document(apps)
    config = AuxipConfig.model_validate({"data_dir": str(tmp_path), "scanner": "disabled", **document})
    targets = [target for route in config.routes for target in route.targets]
    inbox_targets = [target for target in targets if target.name.endswith("-inbox")]
    assert inbox_targets
    assert all(target.url.startswith("s3://") for target in inbox_targets)
    assert not [target for target in targets if target.url.startswith("inbox://")]
    storage = apps.exchange_storage
    assert storage is not None
    for target in inbox_targets:
        app = target.name.removesuffix("-inbox")
        assert target.url == f"s3://{storage.bucket}/{storage.prefix}/{app}/inbox/"
        assert (target.endpoint_url, target.credentials) == (storage.endpoint_url, storage.credentials)

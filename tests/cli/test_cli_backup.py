"""`auxip backup` / `auxip restore`: a published SQLite catalog restored into a fresh data dir is the same catalog."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from auxip.auth import LocalIdentityStore, Role
from auxip.catalog.models import Attribute, Checksum, Product, PublicationClock
from auxip.cli import app
from auxip.cli.common import open_catalog
from auxip.config import load_config
from auxip.subscriptions.models import MatcherCursor, Notification, Subscription
from auxip_testing.api_server import seed_catalog

runner = CliRunner()
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def config_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auxip.yaml"
    path.write_text(f"data_dir: {directory / 'data'}\n")
    return path


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a backup carries, in a stable order: equal snapshots are equal catalogs."""
    tables = {
        "product": (Product, Product.id),
        "checksum": (Checksum, Checksum.product_id, Checksum.algorithm),
        "attribute": (Attribute, Attribute.product_id, Attribute.name),
        "subscription": (Subscription, Subscription.id),
        "notification": (Notification, Notification.subscription_id, Notification.product_id),
    }
    with engine.connect() as conn:
        rows = {
            name: [tuple(row) for row in conn.execute(select(model.__table__).order_by(*order))]
            for name, (model, *order) in tables.items()
        }
        rows["clocks"] = [
            (conn.scalar(select(PublicationClock.last_publication_date)),
             conn.scalar(select(MatcherCursor.last_publication_date)))
        ]  # fmt: skip
    return rows


@pytest.fixture
def source_catalog(tmp_path: Path) -> Path:
    """8 published products (one evicted), two users, a subscription with one notification, a moved cursor."""
    config_path = config_file(tmp_path / "old")
    config = load_config(config_path)
    engine = open_catalog(config)
    asyncio.run(seed_catalog(engine, config.open_storage(), 8, seed=3))
    store = LocalIdentityStore(engine)
    store.add_user("alice", "alice-password", frozenset({Role.DOWNLOAD}))
    store.add_user("root", "root-password", frozenset({Role.ADMIN, Role.REPORTING}))
    with Session(engine) as session, session.begin():
        products = session.scalars(select(Product).order_by(Product.publication_date)).all()
        products[2].evicted_at = NOW
        subscription = Subscription(
            id=uuid.uuid4(), owner="alice", status="running", filter_param="startswith(Name,'S1A_')",
            submission_date=NOW - timedelta(days=1), last_notification_date=None,
            notification_endpoint="https://client.example/notify", endpoint_username="hook",
            endpoint_password="hook-secret",  # noqa: S106 - test data
        )  # fmt: skip
        session.add(subscription)
        session.flush()
        session.add(
            Notification(
                subscription_id=subscription.id, product_id=products[0].id, status="delivered", attempts=1,
                created_at=NOW, next_attempt_at=NOW, last_error=None, delivered_at=NOW,
            )
        )  # fmt: skip
        session.execute(update(MatcherCursor).values(last_publication_date=products[4].publication_date))
    engine.dispose()
    return config_path


def test_backup_and_restore_give_the_same_catalog(tmp_path: Path, source_catalog: Path) -> None:
    backup_dir = tmp_path / "backup"
    made = runner.invoke(app, ["backup", "--to", str(backup_dir), "-c", str(source_catalog), "--json"])
    assert made.exit_code == 0, made.output
    manifest = json.loads(made.output)
    assert {name: entry["rows"] for name, entry in manifest["files"].items()} == {
        "products.jsonl": 8, "users.jsonl": 2, "subscriptions.jsonl": 1, "notifications.jsonl": 1,
    }  # fmt: skip
    assert sorted(p.name for p in backup_dir.iterdir()) == [
        "manifest.json", "notifications.jsonl", "products.jsonl", "subscriptions.jsonl", "users.jsonl",
    ]  # fmt: skip
    assert {p.stat().st_mode & 0o777 for p in backup_dir.iterdir()} == {0o600}

    target = config_file(tmp_path / "new")
    restored = runner.invoke(app, ["restore", "--from", str(backup_dir), "-c", str(target), "--json"])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output)["rows"] == {
        "products.jsonl": 8, "users.jsonl": 2, "subscriptions.jsonl": 1, "notifications.jsonl": 1,
    }  # fmt: skip

    old, new = open_catalog(load_config(source_catalog)), open_catalog(load_config(target))
    assert snapshot(new) == snapshot(old)  # Ids, PublicationDates, checksums, attributes, eviction: all exact
    assert LocalIdentityStore(new).verify("root", "root-password") is not None
    assert LocalIdentityStore(new).verify("alice", "wrong") is None
    old.dispose()
    new.dispose()

    listed = json.loads(runner.invoke(app, ["products", "list", "--orderby", "PublicationDate", "-c", str(target),
                                            "--json"]).output)["value"]  # fmt: skip
    cut = listed[1]["PublicationDate"]
    query = ["products", "list", "--filter", f"PublicationDate gt {cut}", "--count", "--json"]
    before = runner.invoke(app, [*query, "-c", str(source_catalog)])
    after = runner.invoke(app, [*query, "-c", str(target)])
    assert after.exit_code == 0, after.output
    assert json.loads(after.output) == json.loads(before.output)
    assert json.loads(after.output)["@odata.count"] == 5  # 8, less the first two and the evicted one


def test_restore_refuses_a_non_empty_catalog_unless_forced(tmp_path: Path, source_catalog: Path) -> None:
    backup_dir = tmp_path / "backup"
    assert runner.invoke(app, ["backup", "--to", str(backup_dir), "-c", str(source_catalog)]).exit_code == 0
    refused = runner.invoke(app, ["restore", "--from", str(backup_dir), "-c", str(source_catalog)])
    assert refused.exit_code == 1
    assert "the target catalog is not empty (8 products, 2 users, 1 subscriptions, 1 notifications)" in refused.output
    # Forced into the same catalog: everything is already there, so nothing changes.
    engine = open_catalog(load_config(source_catalog))
    before = snapshot(engine)
    forced = runner.invoke(app, ["restore", "--from", str(backup_dir), "--force", "-c", str(source_catalog)])
    assert forced.exit_code == 0, forced.output
    assert snapshot(engine) == before
    engine.dispose()
    again = runner.invoke(app, ["backup", "--to", str(backup_dir), "-c", str(source_catalog)])
    assert again.exit_code == 1
    assert "is not an empty directory" in again.output


def test_a_damaged_or_incomplete_backup_changes_nothing(tmp_path: Path, source_catalog: Path) -> None:
    backup_dir = tmp_path / "backup"
    assert runner.invoke(app, ["backup", "--to", str(backup_dir), "-c", str(source_catalog)]).exit_code == 0
    products = backup_dir / "products.jsonl"
    lines = products.read_text().splitlines(keepends=True)
    products.write_text("".join(lines[:-1]))  # one product lost
    target = config_file(tmp_path / "new")
    damaged = runner.invoke(app, ["restore", "--from", str(backup_dir), "-c", str(target)])
    assert damaged.exit_code == 1
    assert "products.jsonl: 7 rows with SHA256" in damaged.output
    assert "the manifest has 8 rows" in damaged.output
    engine = open_catalog(load_config(target))
    assert snapshot(engine)["product"] == []
    engine.dispose()
    (backup_dir / "manifest.json").unlink()
    incomplete = runner.invoke(app, ["restore", "--from", str(backup_dir), "-c", str(target)])
    assert incomplete.exit_code == 1
    assert "cannot read the manifest" in incomplete.output

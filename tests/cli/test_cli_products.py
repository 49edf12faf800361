"""`auxip products list|get|download` on a SQLite catalog with real stored bytes: the API's semantics, no HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from auxip.catalog.models import Product
from auxip.cli import app
from auxip.cli.common import open_catalog
from auxip.config import load_config
from auxip_testing.api_server import sample_content, seed_catalog

runner = CliRunner()


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, list[dict[str, object]]]:
    """A config file whose catalog holds 6 published products; returns it with (Name, Id, MD5, bytes) of each."""
    path = tmp_path / "auxip.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\n")
    config = load_config(path)
    engine = open_catalog(config)
    storage = config.open_storage()
    records = asyncio.run(seed_catalog(engine, storage, 6, seed=7))
    products = []
    for record in records:
        listed = json.loads(runner.invoke(app, ["products", "get", record.name, "-c", str(path), "--json"]).output)
        products.append({"name": record.name, "id": listed["Id"], "md5": record.md5, "size": record.content_length,
                         "data": sample_content(record, record.content_length)})  # fmt: skip
    engine.dispose()
    return path, products


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "-c", str(config)])
    return result.exit_code, result.output


def test_list_filters_orders_and_counts_like_the_api(catalog: tuple[Path, list[dict[str, object]]]) -> None:
    config, products = catalog
    code, output = invoke(config, "products", "list", "--orderby", "PublicationDate desc", "--json")
    assert code == 0, output
    everything = json.loads(output)["value"]
    assert [item["Name"] for item in everything] == [p["name"] for p in reversed(products)]
    assert set(everything[0]) == {
        "@odata.mediaContentType", "Id", "Name", "ContentType", "ContentLength", "OriginDate", "PublicationDate",
        "EvictionDate", "Checksum", "ContentDate",
    }  # fmt: skip
    cut = everything[3]["PublicationDate"]
    code, output = invoke(
        config, "products", "list", "--filter", f"PublicationDate gt {cut}", "--orderby", "PublicationDate",
        "--top", "2", "--count", "--json",
    )  # fmt: skip
    assert code == 0, output
    page = json.loads(output)
    assert page["@odata.count"] == 3
    assert [item["Name"] for item in page["value"]] == [p["name"] for p in products[3:5]]
    assert "next_skip" not in page  # the client's $top bounded the page, not the server's cap
    md5 = next(c["Value"] for c in page["value"][0]["Checksum"] if c["Algorithm"] == "MD5")
    assert md5 == products[3]["md5"]


def test_list_prints_a_table(catalog: tuple[Path, list[dict[str, object]]]) -> None:
    config, products = catalog
    code, output = invoke(config, "products", "list", "--orderby", "PublicationDate", "--skip", "5", "--count")
    assert code == 0, output
    assert products[5]["name"] in output
    assert str(products[5]["md5"]) in output
    assert products[4]["name"] not in output
    assert "6 products match" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "Name eq"], "$filter"),
        (["--filter", "Colour eq 'red'"], "Colour"),
        (["--orderby", "Checksum asc"], "$orderby: 'Checksum' is not a sortable property of Products"),
    ],
)
def test_bad_options_exit_2_with_the_odata_message(
    catalog: tuple[Path, list[dict[str, object]]], args: list[str], message: str
) -> None:
    code, output = invoke(catalog[0], "products", "list", *args)
    assert code == 2
    assert message in output


def test_get_by_id_or_name_with_attributes(catalog: tuple[Path, list[dict[str, object]]]) -> None:
    config, products = catalog
    by_id = json.loads(invoke(config, "products", "get", str(products[2]["id"]), "--json")[1])
    by_name = json.loads(invoke(config, "products", "get", str(products[2]["name"]), "--json")[1])
    assert by_id == by_name
    assert by_id["@odata.context"] == "$metadata#Products/$entity"
    attributes = {a["Name"]: a["Value"] for a in by_id["Attributes"]}
    assert attributes["platformShortName"] == "SENTINEL-1"
    assert by_id["ContentLength"] == products[2]["size"]
    code, output = invoke(config, "products", "get", "S1A_NO_SUCH_PRODUCT.EOF.zip")
    assert code == 1
    assert "no product with Id or Name S1A_NO_SUCH_PRODUCT.EOF.zip" in output
    code, output = invoke(config, "products", "get", str(products[2]["name"]))
    assert code == 0
    assert "Attributes/platformShortName" in output


def test_download_streams_and_verifies(catalog: tuple[Path, list[dict[str, object]]], tmp_path: Path) -> None:
    config, products = catalog
    target = tmp_path / "out"
    target.mkdir()
    code, output = invoke(config, "products", "download", str(products[1]["id"]), "-o", str(target))
    assert code == 0, output
    written = target / str(products[1]["name"])
    assert written.read_bytes() == products[1]["data"]
    assert f"MD5 {products[1]['md5']} verified" in output
    code, output = invoke(config, "products", "download", str(products[1]["id"]), "-o", str(target))
    assert code == 1
    assert "exists; give --overwrite" in output


def test_download_removes_a_file_whose_md5_differs(
    catalog: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> None:
    config, products = catalog
    stored = tmp_path / "data" / "products" / "products" / str(products[0]["name"])
    data = bytearray(stored.read_bytes())
    data[10] ^= 0xFF  # same length, other bytes: only the MD5 can tell
    stored.write_bytes(bytes(data))
    target = tmp_path / "copy.zip"
    code, output = invoke(config, "products", "download", str(products[0]["name"]), "-o", str(target))
    assert code == 1
    assert f"with MD5 {hashlib.md5(data, usedforsecurity=False).hexdigest()}" in output
    assert f"the catalog has {products[0]['size']} bytes with MD5 {products[0]['md5']}" in output
    assert not target.exists()
    assert list(tmp_path.glob("copy.zip*")) == []


def test_evicted_products_are_refused(catalog: tuple[Path, list[dict[str, object]]], tmp_path: Path) -> None:
    config, products = catalog
    engine = open_catalog(load_config(config))
    with engine.begin() as conn:
        conn.execute(
            update(Product)
            .where(Product.name == products[4]["name"])
            .values(evicted_at=datetime(2030, 1, 1, tzinfo=UTC))
        )
    engine.dispose()
    code, output = invoke(config, "products", "download", str(products[4]["name"]), "-o", str(tmp_path / "x"))
    assert code == 1
    assert "was evicted at 2030-01-01T00:00:00.000Z" in output
    assert not (tmp_path / "x").exists()
    listed = json.loads(invoke(config, "products", "list", "--json")[1])["value"]
    assert products[4]["name"] not in [item["Name"] for item in listed]

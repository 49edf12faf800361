"""Realistic Sentinel-1 auxiliary product records (names, validity windows, attributes), deterministic per seed.

Names follow the contract's naming rules: EOF orbit and planning files published as `<name>.EOF.zip`, SAFE auxiliary
products as `<name>.SAFE.zip`. Used by API tests, the conformance run and the catalog benchmark.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta

from auxip.catalog.records import AttributeValue, ProductRecord

# (product type, kind, validity length, share of the feed): orbit files dominate an operational AUXIP.
PRODUCT_TYPES: list[tuple[str, str, timedelta, int]] = [
    ("AUX_POEORB", "orbit", timedelta(days=1, hours=2), 20),
    ("AUX_RESORB", "orbit", timedelta(hours=3), 40),
    ("AUX_PREORB", "orbit", timedelta(days=2), 5),
    ("MPL_ORBPRE", "planning", timedelta(days=10), 5),
    ("MPL_ORBRES", "planning", timedelta(hours=3), 3),
    ("AUX_WND", "safe", timedelta(hours=6), 10),
    ("AUX_WAV", "safe", timedelta(hours=6), 5),
    ("AUX_ICE", "safe", timedelta(days=1), 4),
    ("AUX_TRO", "safe", timedelta(hours=6), 3),
    ("AUX_CAL", "safe-open", timedelta(0), 2),
    ("AUX_INS", "safe-open", timedelta(0), 1),
    ("AUX_PP1", "safe-open", timedelta(0), 1),
    ("AUX_SCS", "safe-open", timedelta(0), 1),
]
UNITS = ("A", "B", "C")
EPOCH = datetime(2021, 1, 1, tzinfo=UTC)
ORBITS_PER_DAY = 175 / 12  # Sentinel-1 repeat cycle: 175 orbits in 12 days


def _stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _name(kind: str, unit: str, product_type: str, start: datetime, stop: datetime, created: datetime) -> str:
    mission = "S1_" if product_type in ("AUX_WND", "AUX_WAV", "AUX_ICE", "AUX_TRO") else f"S1{unit}"
    if kind == "orbit":
        return f"{mission}_OPER_{product_type}_OPOD_{_stamp(created)}_V{_stamp(start)}_{_stamp(stop)}.EOF.zip"
    if kind == "planning":
        version = created.hour * 60 + created.minute + 1
        return f"{mission}_OPER_{product_type}_{_stamp(start)}_{_stamp(stop)}_{version:04d}.EOF.zip"
    validity = f"V{_stamp(start)}" + (f"_{_stamp(stop)}" if kind == "safe" else "")
    return f"{mission}_{product_type}_{validity}_G{_stamp(created)}.SAFE.zip"


def sample_records(
    count: int, seed: int = 1, start: datetime = EPOCH, product_types: Collection[str] | None = None
) -> Iterator[ProductRecord]:
    """`count` products in generation order, about one every two minutes from `start` (of `product_types` only)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    chosen = [entry for entry in PRODUCT_TYPES if product_types is None or entry[0] in product_types]
    types = [entry for entry in chosen for _ in range(entry[3])]
    for index in range(count):
        product_type, kind, length, _share = rng.choice(types)
        unit = rng.choice(UNITS)
        created = start + timedelta(seconds=120 * index + rng.randint(0, 119))
        validity_start = created - timedelta(hours=rng.randint(0, 48))
        validity_stop = validity_start + length if length else None
        name = _name(kind, unit, product_type, validity_start, validity_stop or validity_start, created)
        size = rng.randint(20_000, 5_000_000)
        attributes: dict[str, AttributeValue] = {
            "productType": product_type,
            "platformShortName": "SENTINEL-1",
            "processingCenter": "OPOD" if kind == "orbit" else "S1PDGS",
            "processorName": "auxip-sample",
            "processorVersion": f"{rng.randint(1, 3)}.{rng.randint(0, 9)}",
            "instrumentShortName": "SAR",
            "beginningDateTime": validity_start,
            "processingDate": created,
        }
        if not name.startswith("S1_"):
            attributes["platformSerialIdentifier"] = unit
        if validity_stop is not None:
            attributes["endingDateTime"] = validity_stop
        if kind == "orbit":
            attributes["timeliness"] = {"AUX_POEORB": "NTC", "AUX_RESORB": "NRT"}.get(product_type, "Fast")
            attributes["orbitNumber"] = int((validity_start - datetime(2014, 4, 3, tzinfo=UTC)).days * ORBITS_PER_DAY)
        yield ProductRecord(
            name=name,
            content_length=size,
            checksums={"MD5": hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()},
            origin_date=created + timedelta(seconds=rng.randint(5, 300)),
            content_date_start=validity_start,
            content_date_end=validity_stop,
            retention=timedelta(days=rng.choice((90, 365, 3650))),
            attributes=attributes,
            storage_key=f"products/{name}",
        )

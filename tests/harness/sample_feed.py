"""Realistic Sentinel-1 auxiliary INPUT files, as sources offer them, deterministic per seed.

EOF files are Earth Explorer XML (Fixed_Header + Data_Block; orbit types carry OSVs one every 10 s on a circular
sun-synchronous orbit, Earth-fixed, with TAI/UTC/UT1 times and the absolute orbit counted from the unit's launch,
175 orbits per 12 days). SAFE products are directories with an XFDU `manifest.safe` and a `data/` payload (netCDF-like
binary for the meteorological types, XML otherwise) whose size and MD5 the manifest records. Archives (`.tgz`,
`.tar`) are byte-for-byte reproducible: fixed mtimes, owners and gzip header.

Every writer creates `.<name>.part` first and renames it, as real producers do, so a poller never sees half a file;
writers refuse to replace an existing entry (FileExistsError). Used by the pipeline tests, the benchmarks and the
live feed of `make demo`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from auxip_testing.sample_products import EPOCH, PRODUCT_TYPES, UNITS

__all__ = [
    "ARCHIVE_MTIME",
    "EPOCH",
    "UNIT_INDEPENDENT_TYPES",
    "feed",
    "input_size",
    "write_eof",
    "write_safe",
    "write_tar",
    "write_tgz",
]

#: Types produced once for all units (`S1_` names).
UNIT_INDEPENDENT_TYPES = frozenset({"AUX_WND", "AUX_WAV", "AUX_ICE", "AUX_TRO", "AUX_TEC"})
ARCHIVE_MTIME = datetime(2021, 1, 1, tzinfo=UTC)
_NETCDF_TYPES = frozenset({"AUX_WND", "AUX_WAV", "AUX_ICE", "AUX_TRO", "AUX_TEC"})
_ORBIT_TYPES = frozenset({"AUX_POEORB", "AUX_RESORB", "AUX_PREORB", "MPL_ORBPRE", "MPL_ORBRES", "MPL_ORBSCT"})
_DESCRIPTIONS = {
    "AUX_POEORB": "Precise Orbit Ephemerides (POE) Orbit File",
    "AUX_RESORB": "Restituted Orbit File",
    "AUX_PREORB": "Predicted Orbit File",
    "MPL_ORBPRE": "FOS Predicted Orbit File",
    "MPL_ORBRES": "FOS Restituted Orbit File",
    "MPL_ORBSCT": "Reference Orbit Scenario File",
}
# Naive UTC, like the per-record arithmetic (tz-aware datetimes cost a lot in the OSV loop).
_LAUNCH = {
    "A": datetime(2014, 4, 3, 21, 2),
    "B": datetime(2016, 4, 25, 21, 2),
    "C": datetime(2024, 12, 5, 21, 20),
    "D": datetime(2025, 11, 4, 21, 2),
}
_ORBIT_PERIOD = 12 * 86400 / 175
_ORBIT_RADIUS = 7_071_000.0
_INCLINATION = math.radians(98.18)
_EARTH_RATE = 7.292115e-5
# Sun-synchronous: the node follows the Sun, one turn a year.
_NODE_RATE = 2 * math.pi / (365.2422 * 86400)
_OSV_STEP = timedelta(seconds=10)
_TAI_MINUS_UTC = timedelta(seconds=37)
_UT1_MINUS_UTC = timedelta(microseconds=-176_459)
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FIT_ATTEMPTS = 6
# Input forms of the feed and their shares: plain `.EOF`/`.SAFE` dominate; some producers deliver tgz.
_CONTAINERS = (("", 88), (".tgz", 8), ("TGZ", 4))


@dataclass(frozen=True, slots=True)
class _Product:
    """An EOF file (one entry, path "") or a SAFE directory (files relative to it), still in memory."""

    name: str
    directory: bool
    files: tuple[tuple[str, bytes], ...]

    @property
    def size(self) -> int:
        return sum(len(data) for _path, data in self.files)


def write_eof(
    directory: Path,
    product_type: str,
    unit: str | None,
    created: datetime,
    start: datetime,
    stop: datetime | None,
    osv_count: int = 60,
) -> Path:
    """Write `<stem>.EOF`; `unit` A-D (None: `S1_`), `stop` None: open-ended, MPL_* types get planning names.

    Orbit types carry `osv_count` OSVs (about 470 bytes each), others as many data records.
    """
    if osv_count < 1:
        raise ValueError(f"osv_count must be at least 1, not {osv_count}")
    return _write_product(directory, _eof(product_type, unit, created, start, stop, records=osv_count))


def write_safe(
    directory: Path,
    product_type: str,
    unit: str | None,
    generated: datetime,
    start: datetime,
    stop: datetime | None,
    payload_bytes: int = 20_000,
) -> Path:
    """Write the `<stem>.SAFE` directory of a SAFE type (`AUX_CAL`...), with a data payload of `payload_bytes`."""
    if payload_bytes < 1:
        raise ValueError(f"payload_bytes must be at least 1, not {payload_bytes}")
    return _write_product(directory, _safe(product_type, unit, generated, start, stop, payload_bytes))


def write_tgz(
    content: Path, directory: Path | None = None, name: str | None = None, mtime: datetime = ARCHIVE_MTIME
) -> Path:
    """Wrap an EOF file or SAFE directory into `<content name>.tgz` (or `name`, e.g. `<stem>.TGZ`, `.tar.gz`)."""
    return _write_wrapped(content, directory, name or f"{content.name}.tgz", mtime, compress=True)


def write_tar(
    content: Path, directory: Path | None = None, name: str | None = None, mtime: datetime = ARCHIVE_MTIME
) -> Path:
    """Wrap an EOF file or SAFE directory into `<content name>.tar` (or `name`), uncompressed."""
    return _write_wrapped(content, directory, name or f"{content.name}.tar", mtime, compress=False)


def input_size(path: Path) -> int:
    """Bytes of an input as a source lists it: a file's size, or the sum of a directory's files."""
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size


def feed(
    directory: Path,
    count: int,
    seed: int = 1,
    start: datetime = EPOCH,
    sizes: tuple[int, int] = (10_000, 1_000_000),
) -> list[Path]:
    """Write `count` inputs with unique names, one generated about every two minutes from `start`.

    The type mix is that of an operational AUXIP (orbit files dominate, see `sample_products.PRODUCT_TYPES`); sizes
    are log-uniform within `sizes` (a tgz measured compressed). Returns the written paths in order.
    """
    low, high = sizes
    if not 0 < low <= high:
        raise ValueError(f"sizes must be 0 < low <= high, not {sizes}")
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    types = [entry for entry in PRODUCT_TYPES for _ in range(entry[3])]
    containers = [form for form, share in _CONTAINERS for _ in range(share)]
    directory.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    written: list[Path] = []
    for index in range(count):
        product_type, kind, length, _share = rng.choice(types)
        unit = None if product_type in UNIT_INDEPENDENT_TYPES else rng.choice(UNITS)
        created = start + timedelta(seconds=120 * index + rng.randint(0, 119))
        validity_start = created - timedelta(hours=rng.randint(0, 48))
        target = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        form = rng.choice(containers)
        stop = None if kind == "safe-open" else validity_start + length
        eof = kind in ("orbit", "planning")
        stem = _eof_stem if eof else _safe_stem
        # Distinct creation times make most names unique; planning names carry none, so shift their validity.
        while stem(product_type, unit, created, validity_start, stop) in seen:
            validity_start += timedelta(seconds=1)
            stop = None if stop is None else stop + timedelta(seconds=1)
        build = partial(_eof if eof else _safe, product_type, unit, created, validity_start, stop)
        product, data = _fit(build, form, target, low, high)
        seen.add(stem(product_type, unit, created, validity_start, stop))
        if data is None:
            written.append(_write_product(directory, product))
        else:
            name = f"{product.name}.tgz" if form == ".tgz" else f"{product.name.rpartition('.')[0]}.TGZ"
            written.append(_write_file(directory / name, data))
    return written


def _fit(build: Callable[..., _Product], form: str, target: int, low: int, high: int) -> tuple[_Product, bytes | None]:
    """The product (and its tgz bytes when wrapped) whose input size is within [low, high], near `target`."""
    request = target
    for _attempt in range(_FIT_ATTEMPTS):
        product = build(size=request)
        data = _archive(product, ARCHIVE_MTIME, compress=True) if form else None
        size = product.size if data is None else len(data)
        if low <= size <= high:
            return product, data
        # Compression ratios are steady for one product kind, so scaling the request converges in a step or two.
        request = max(1, round(request * target / size))
    raise ValueError(f"cannot make a {product.name} input within {low}..{high} bytes (got {size})")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%S")


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _iso(value: datetime) -> str:
    return _naive(value).isoformat(timespec="microseconds")


def _ee(value: datetime | None) -> str:
    return "UTC=9999-99-99T99:99:99" if value is None else f"UTC={_iso(value)[:19]}"


def _mission(unit: str | None) -> str:
    if unit not in (None, *_LAUNCH):
        raise ValueError(f"unit must be one of A, B, C, D or None (unit-independent), not {unit!r}")
    return f"S1{unit or '_'}"


def _eof_stem(product_type: str, unit: str | None, created: datetime, start: datetime, stop: datetime | None) -> str:
    if len(product_type) != 10:
        raise ValueError(f"an EOF file type has 10 characters, not {product_type!r}")
    mission = _mission(unit)
    stop_text = "99999999T999999" if stop is None else _stamp(stop)
    if product_type.startswith("MPL_"):
        # Planning files carry a version instead of a creation time; the minute of the day keeps it varied.
        version = created.hour * 60 + created.minute + 1
        return f"{mission}_OPER_{product_type}_{_stamp(start)}_{stop_text}_{version:04d}"
    site = "OPOD" if product_type in _ORBIT_TYPES else "MPC_"
    return f"{mission}_OPER_{product_type}_{site}_{_stamp(created)}_V{_stamp(start)}_{stop_text}"


def _eof(
    product_type: str,
    unit: str | None,
    created: datetime,
    start: datetime,
    stop: datetime | None,
    records: int | None = None,
    size: int | None = None,
) -> _Product:
    """An EOF of `records` data records, or of exactly `size` bytes (as many records as fit, then blank padding).

    Never less than one record: a `size` below that gives the smallest file.
    """
    stem = _eof_stem(product_type, unit, created, start, stop)
    orbit = product_type in _ORBIT_TYPES
    record = _osv if orbit else _record
    list_name = "List_of_OSVs" if orbit else "List_of_Records"
    tail = f"    </{list_name}>\n  </Data_Block>\n</Earth_Explorer_File>\n"
    first = _naive(start)
    body: list[str] = [record(unit, first, 0)]
    # Sized with the count attribute of one record; corrected below once the count is known.
    used = len(body[0]) + len(tail) + len(_eof_head(stem, product_type, unit, created, start, stop, list_name, 1))
    while len(body) < (records or 0) or (size is not None and used < size):
        body.append(record(unit, first, len(body)))
        used += len(body[-1])
    while True:
        head = _eof_head(stem, product_type, unit, created, start, stop, list_name, len(body))
        text = head + "".join(body) + tail
        if size is None or len(text) <= size or len(body) == 1:
            break
        body.pop()
    if size is not None and len(text) < size:
        text = text[: -len(tail)] + " " * (size - len(text)) + tail
    return _Product(f"{stem}.EOF", False, (("", text.encode("ascii")),))


def _eof_head(
    stem: str,
    product_type: str,
    unit: str | None,
    created: datetime,
    start: datetime,
    stop: datetime | None,
    list_name: str,
    count: int,
) -> str:
    if product_type.startswith("MPL_"):
        system, creator, version = "FOS", "NAPEOS", "4.12"
    elif product_type in _ORBIT_TYPES:
        system, creator, version = "OPOD", "OPOD", "3.1"
    else:
        system, creator, version = "MPC", "S1-MPC-AUX", "2.3"
    description = _DESCRIPTIONS.get(product_type, f"Sentinel-1 {product_type} auxiliary file")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Earth_Explorer_File xmlns="http://eop-cfi.esa.int/CFI" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://eop-cfi.esa.int/CFI http://eop-cfi.esa.int/CFI/EE_CFI_SCHEMAS/EO_OPER_AUX_ORBRES_0101.XSD" \
schemaVersion="1.1">
  <Earth_Explorer_Header>
    <Fixed_Header>
      <File_Name>{stem}</File_Name>
      <File_Description>{description}</File_Description>
      <Notes></Notes>
      <Mission>Sentinel-1{unit or ""}</Mission>
      <File_Class>OPER</File_Class>
      <File_Type>{product_type}</File_Type>
      <Validity_Period>
        <Validity_Start>{_ee(start)}</Validity_Start>
        <Validity_Stop>{_ee(stop)}</Validity_Stop>
      </Validity_Period>
      <File_Version>0001</File_Version>
      <Source>
        <System>{system}</System>
        <Creator>{creator}</Creator>
        <Creator_Version>{version}</Creator_Version>
        <Creation_Date>{_ee(created)}</Creation_Date>
      </Source>
    </Fixed_Header>
    <Variable_Header>
      <Ref_Frame>EARTH_FIXED</Ref_Frame>
      <Time_Reference>UTC</Time_Reference>
    </Variable_Header>
  </Earth_Explorer_Header>
  <Data_Block type="xml">
    <{list_name} count="{count}">
"""


def _osv(unit: str | None, first: datetime, index: int) -> str:
    """The OSV `index` steps after `first` (naive UTC)."""
    utc = first + index * _OSV_STEP
    elapsed = (utc - _LAUNCH[unit or "A"]).total_seconds()
    # A circular orbit in the Earth-fixed frame: argument of latitude u from the ascending node, node longitude lam.
    revolutions = elapsed / _ORBIT_PERIOD
    u = 2 * math.pi * (revolutions % 1)
    du = 2 * math.pi / _ORBIT_PERIOD
    dlam = _NODE_RATE - _EARTH_RATE
    lam = (dlam * elapsed) % (2 * math.pi)
    qx = _ORBIT_RADIUS * math.cos(u)
    qy = _ORBIT_RADIUS * math.sin(u) * math.cos(_INCLINATION)
    qz = _ORBIT_RADIUS * math.sin(u) * math.sin(_INCLINATION)
    dqx = -_ORBIT_RADIUS * math.sin(u) * du
    dqy = _ORBIT_RADIUS * math.cos(u) * math.cos(_INCLINATION) * du
    cos_lam, sin_lam = math.cos(lam), math.sin(lam)
    x, y = qx * cos_lam - qy * sin_lam, qx * sin_lam + qy * cos_lam
    vx = dqx * cos_lam - dqy * sin_lam - y * dlam
    vy = dqx * sin_lam + dqy * cos_lam + x * dlam
    vz = _ORBIT_RADIUS * math.cos(u) * math.sin(_INCLINATION) * du
    return f"""      <OSV>
        <TAI>TAI={(utc + _TAI_MINUS_UTC).isoformat(timespec="microseconds")}</TAI>
        <UTC>UTC={utc.isoformat(timespec="microseconds")}</UTC>
        <UT1>UT1={(utc + _UT1_MINUS_UTC).isoformat(timespec="microseconds")}</UT1>
        <Absolute_Orbit>{max(1, 1 + int(revolutions)):+d}</Absolute_Orbit>
        <X unit="m">{x:.6f}</X>
        <Y unit="m">{y:.6f}</Y>
        <Z unit="m">{qz:.6f}</Z>
        <VX unit="m/s">{vx:.6f}</VX>
        <VY unit="m/s">{vy:.6f}</VY>
        <VZ unit="m/s">{vz:.6f}</VZ>
        <Quality>NOMINAL</Quality>
      </OSV>
"""


def _record(_unit: str | None, first: datetime, index: int) -> str:
    value = math.sin(index / 7) * 1e-3
    return f"""      <Record>
        <Time>UTC={(first + index * _OSV_STEP).isoformat(timespec="microseconds")}</Time>
        <Value>{value:+.9e}</Value>
      </Record>
"""


def _safe_stem(product_type: str, unit: str | None, generated: datetime, start: datetime, stop: datetime | None) -> str:
    if not (product_type.startswith("AUX_") and len(product_type) == 7):
        raise ValueError(f"a SAFE type is AUX_ and 3 characters, not {product_type!r}")
    validity = f"V{_stamp(start)}" + ("" if stop is None else f"_{_stamp(stop)}")
    return f"{_mission(unit)}_{product_type}_{validity}_G{_stamp(generated)}"


def _safe(
    product_type: str,
    unit: str | None,
    generated: datetime,
    start: datetime,
    stop: datetime | None,
    payload_bytes: int | None = None,
    size: int | None = None,
) -> _Product:
    """A SAFE with a payload of `payload_bytes`, or sized so that manifest + payload make `size` bytes."""
    stem = _safe_stem(product_type, unit, generated, start, stop)
    mission = _mission(unit)
    netcdf = product_type in _NETCDF_TYPES
    data_path = f"data/{stem.lower()}.nc" if netcdf else f"data/{mission.lower()}-{product_type.lower()}.xml"
    payload_size = payload_bytes if payload_bytes is not None else 1
    if size is not None:
        # The manifest records the payload size, so its own length depends on the digits: settle it in two steps.
        for _step in range(2):
            manifest = _manifest(product_type, unit, generated, start, data_path, payload_size, "0" * 32)
            payload_size = max(1, size - len(manifest))
    payload = _payload(stem, netcdf, payload_size)
    manifest = _manifest(
        product_type,
        unit,
        generated,
        start,
        data_path,
        len(payload),
        hashlib.md5(payload, usedforsecurity=False).hexdigest(),
    )
    return _Product(f"{stem}.SAFE", True, (("manifest.safe", manifest), (data_path, payload)))


def _payload(stem: str, netcdf: bool, size: int) -> bytes:
    rng = random.Random(stem)  # noqa: S311 - reproducible test data, not security
    if netcdf:
        return (_HDF5_SIGNATURE + rng.randbytes(size))[:size]
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<auxiliaryData>\n'
    tail = "</auxiliaryData>\n"
    parts = [head]
    used = len(head) + len(tail)
    swaths = ("S1", "S2", "S3", "S4", "S5", "S6", "IW1", "IW2", "IW3", "EW1", "EW2", "EW3", "EW4", "EW5", "WV1", "WV2")
    while True:
        entry = (
            f'  <parameters swath="{rng.choice(swaths)}" polarisation="{rng.choice(("HH", "HV", "VV", "VH"))}">'
            f"<value>{rng.uniform(-1, 1):+.12e}</value></parameters>\n"
        )
        if used + len(entry) > size:
            break
        parts.append(entry)
        used += len(entry)
    parts.append(" " * max(0, size - used) + tail)
    return "".join(parts).encode("ascii")


def _manifest(
    product_type: str,
    unit: str | None,
    generated: datetime,
    start: datetime,
    data_path: str,
    data_size: int,
    md5: str,
) -> bytes:
    if product_type in _NETCDF_TYPES:
        facility = 'name="Sentinel-1 Payload Data Ground Segment" organisation="ESA" site="S1PDGS"'
        software = f'name="S1PDGS-{product_type}" version="3.4"'
        mime = "application/x-netcdf"
    else:
        facility = 'name="Sentinel-1 Mission Performance Centre" organisation="ESA" site="SAR-MPC"'
        software = 'name="S1-MPC-AUX" version="2.3"'
        mime = "text/xml"
    number = "" if unit is None else f"\n            <safe:number>{unit}</safe:number>"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" \
xmlns:s1auxsar="http://www.esa.int/safe/sentinel-1.0/sentinel-1/auxiliary/sar" \
version="esa/safe/sentinel-1.0/sentinel-1/auxiliary/sar">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 {product_type}" \
dmdID="platform generalProductInformation" pdiID="processing">
      <xfdu:contentUnit unitType="Measurement Data Unit" repID="auxSchema">
        <dataObjectPointer dataObjectID="auxData"/>
      </xfdu:contentUnit>
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">
        <xmlData>
          <safe:processing name="{product_type} Generation" start="{_iso(generated)}" stop="{_iso(generated)}">
            <safe:facility country="Italy" {facility}>
              <safe:software {software}/>
            </safe:facility>
          </safe:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:familyName>SENTINEL-1</safe:familyName>{number}
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information">
        <xmlData>
          <s1auxsar:standAloneProductInformation>
            <s1auxsar:auxProductType>{product_type}</s1auxsar:auxProductType>
            <s1auxsar:validity>{_iso(start)}</s1auxsar:validity>
            <s1auxsar:generation>{_iso(generated)}</s1auxsar:generation>
          </s1auxsar:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
    <dataObject ID="auxData" repID="auxSchema">
      <byteStream mimeType="{mime}" size="{data_size}">
        <fileLocation locatorType="URL" href="./{data_path}"/>
        <checksum checksumName="MD5">{md5}</checksum>
      </byteStream>
    </dataObject>
  </dataObjectSection>
</xfdu:XFDU>
""".encode("ascii")


def _write_product(directory: Path, product: _Product) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if not product.directory:
        return _write_file(directory / product.name, product.files[0][1])
    final = directory / product.name
    if final.exists():
        raise FileExistsError(final)
    part = directory / f".{product.name}.part"
    for relative, data in product.files:
        target = part / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    part.rename(final)
    return final


def _write_file(final: Path, data: bytes) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise FileExistsError(final)
    part = final.with_name(f".{final.name}.part")
    part.write_bytes(data)
    os.replace(part, final)
    return final


def _write_wrapped(content: Path, directory: Path | None, name: str, mtime: datetime, compress: bool) -> Path:
    if content.is_dir():
        files = tuple(
            (item.relative_to(content).as_posix(), item.read_bytes())
            for item in sorted(content.rglob("*"))
            if item.is_file()
        )
    else:
        files = (("", content.read_bytes()),)
    archive = _archive(_Product(content.name, content.is_dir(), files), mtime, compress)
    return _write_file((directory or content.parent) / name, archive)


def _archive(product: _Product, mtime: datetime, compress: bool) -> bytes:
    """A tar (gzip-compressed when `compress`) of the product under its own name, reproducible byte for byte."""
    buffer = io.BytesIO()
    stamp = int(mtime.timestamp())
    # mtime=0 and no file name in the gzip header: the same product always gives the same bytes.
    stream = gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0, filename="") if compress else buffer
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if product.directory:
            parents = {parent.as_posix() for path, _data in product.files for parent in Path(path).parents}
            for relative in sorted(parents):
                tar.addfile(_member(f"{product.name}/{relative}".removesuffix("/."), stamp, None))
        for relative, data in sorted(product.files):
            member = f"{product.name}/{relative}" if relative else product.name
            tar.addfile(_member(member, stamp, len(data)), io.BytesIO(data))
    if compress:
        stream.close()
    return buffer.getvalue()


def _member(name: str, mtime: int, size: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if size is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info

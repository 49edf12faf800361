"""Sentinel-1 auxiliary input names: what the name of an entry found at a source says about its product.

Grammar (the contract's "Sentinel-1 auxiliary file names"):

    EOF   MMM_CCCC_TTTTTTTTTT_<instance>.EOF
            orbit instance     <site: 4 chars>_<creation>_V<validity start>_<validity stop>
            planning instance  <validity start>_<validity stop>_<version: 4 digits>
    SAFE  MMM_AUX_TTT_V<validity start>[_<validity stop>]_G<generation>.SAFE

MMM is S1A/S1B/S1C/S1D or S1_ (unit-independent), CCCC is OPER/TEST/REPR, dates are YYYYMMDDThhmmss in UTC.
An input may be wrapped: `.zip`, `.tar`, `.tgz`, `.tar.gz` or `.gz` after `.EOF`/`.SAFE`, or `.TGZ`/`.tgz` right
after the stem (the stem's shape then tells EOF from SAFE). An EOF validity stop of `99999999T999999` (MPL_ORBSCT
names carry it) means open-ended, like `UTC=9999-99-99T99:99:99` in the header; a SAFE name without stop is too.

`InvalidName.code` is one of `NameErrorCode`, so the pipeline can count and route rejections without parsing text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "FILE_CLASSES",
    "KNOWN_PRODUCT_TYPES",
    "MISSIONS",
    "Container",
    "InvalidName",
    "Kind",
    "NameErrorCode",
    "ParsedName",
    "parse_name",
]

Kind = Literal["EOF", "SAFE"]
Container = Literal["zip", "tar", "tgz", "gz"]
NameErrorCode = Literal[
    "empty-name",
    "name-too-long",
    "bad-characters",
    "unknown-extension",
    "bad-mission",
    "bad-file-class",
    "bad-product-type",
    "bad-name",
    "bad-date",
    "validity-order",
]

MISSIONS = ("S1A", "S1B", "S1C", "S1D", "S1_")
FILE_CLASSES = ("OPER", "TEST", "REPR")
#: Types seen in S1 operations (contract order). Other well-formed types parse too, with `known_type` False.
KNOWN_PRODUCT_TYPES = (
    "AUX_POEORB",
    "AUX_RESORB",
    "AUX_PREORB",
    "AUX_CAL",
    "AUX_INS",
    "AUX_PP1",
    "AUX_PP2",
    "AUX_SCS",
    "AUX_SCF",
    "AUX_ITC",
    "AUX_WND",
    "AUX_WAV",
    "AUX_ICE",
    "AUX_TEC",
    "AUX_TRO",
    "AUX_OBMEMC",
    "AMH_ERRMAT",
    "AMV_ERRMAT",
    "MPL_ORBPRE",
    "MPL_ORBRES",
    "MPL_ORBSCT",
    "MSK_EW_SLC",
    "MSK__LAND_",
    "MSK_OCEAN_",
    "MSK_OVRPAS",
)
_KNOWN = frozenset(KNOWN_PRODUCT_TYPES)

# Most file systems and object stores cap a name at 255 bytes; the names are ASCII, so characters = bytes.
MAX_NAME_LENGTH = 255
_ALLOWED = re.compile(r"[A-Za-z0-9_.]+")
_DATE = r"([0-9]{8}T[0-9]{6})"
_OPEN_STOP = "99999999T999999"
_EOF_TYPE = re.compile(r"[A-Z0-9_]{10}")
_SAFE_TYPE = re.compile(r"[A-Z0-9]{3}")
_ORBIT_INSTANCE = re.compile(rf"([A-Z0-9_]{{4}})_{_DATE}_V{_DATE}_{_DATE}")
_PLANNING_INSTANCE = re.compile(rf"{_DATE}_{_DATE}_([0-9]{{4}})")
_SAFE_VALIDITY = re.compile(rf"V{_DATE}(?:_{_DATE})?_G{_DATE}")
# Longest first: `.tar.gz` must win over `.gz`.
_CONTAINERS: tuple[tuple[str, Container], ...] = (
    (".tar.gz", "tgz"),
    (".tgz", "tgz"),
    (".tar", "tar"),
    (".zip", "zip"),
    (".gz", "gz"),
)


class InvalidName(ValueError):
    """The name is not a Sentinel-1 auxiliary input name; `code` says which rule it breaks."""

    def __init__(self, code: NameErrorCode, detail: str) -> None:
        # Both in args, so the error survives pickling (process pools, queues) with its code.
        super().__init__(code, detail)
        self.code: NameErrorCode = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The fields of a valid input name. Datetimes are UTC-aware; `validity_stop` None means open-ended."""

    stem: str
    kind: Kind
    container: Container | None
    mission: str
    platform_serial: str | None
    file_class: str | None
    product_type: str
    site: str | None
    created: datetime | None
    validity_start: datetime
    validity_stop: datetime | None
    version: int | None
    known_type: bool

    @property
    def published_name(self) -> str:
        """The single file the AUXIP publishes for this input (contract: `<name>.EOF.zip` / `<name>.SAFE.zip`)."""
        return f"{self.stem}.{self.kind}.zip"


def parse_name(name: str) -> ParsedName:
    """Parse an input entry name (a basename, no directories); raise `InvalidName` for anything else."""
    if not name:
        raise InvalidName("empty-name", "the name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName("name-too-long", f"{len(name)} characters, at most {MAX_NAME_LENGTH}")
    if not _ALLOWED.fullmatch(name):
        # Also what stops `a/b.EOF`, `..` tricks and control characters: a name is never a path.
        raise InvalidName("bad-characters", f"{name!r} has characters other than A-Z, a-z, 0-9, '_' and '.'")
    kind, stem, container = _split_extension(name)
    if kind == "EOF":
        return _parse_eof(stem, container)
    return _parse_safe(stem, container)


def _split_extension(name: str) -> tuple[Kind, str, Container | None]:
    base, container, suffix = name, None, ""
    lowered = name.lower()
    for candidate, wrapping in _CONTAINERS:
        if lowered.endswith(candidate):
            base, container, suffix = name[: -len(candidate)], wrapping, candidate
            break
    if base.endswith(".EOF"):
        return "EOF", base[:-4], container
    if base.endswith(".SAFE"):
        return "SAFE", base[:-5], container
    if suffix == ".tgz" and "." not in base:
        return ("SAFE" if base[3:8] == "_AUX_" else "EOF"), base, container
    raise InvalidName("unknown-extension", f"{name!r} does not end in .EOF or .SAFE (optionally zip/tar/tgz/gz)")


def _parse_eof(stem: str, container: Container | None) -> ParsedName:
    mission = _mission(stem)
    file_class = stem[4:8]
    if file_class not in FILE_CLASSES or stem[8:9] != "_":
        raise InvalidName("bad-file-class", f"file class {file_class!r} is not one of {', '.join(FILE_CLASSES)}")
    product_type = stem[9:19]
    if not _EOF_TYPE.fullmatch(product_type) or stem[19:20] != "_":
        raise InvalidName("bad-product-type", f"the file type after {stem[:9]!r} must be 10 characters A-Z, 0-9, _")
    instance = stem[20:]
    site: str | None = None
    created: datetime | None = None
    version: int | None = None
    if orbit := _ORBIT_INSTANCE.fullmatch(instance):
        site, created_text, start_text, stop_text = orbit.groups()
        created = _date(created_text, "creation")
    elif planning := _PLANNING_INSTANCE.fullmatch(instance):
        start_text, stop_text, version_text = planning.groups()
        version = int(version_text)
    else:
        raise InvalidName(
            "bad-name",
            f"instance {instance!r} is neither <site>_<creation>_V<start>_<stop> nor <start>_<stop>_<version>",
        )
    start = _date(start_text, "validity start")
    stop = None if stop_text == _OPEN_STOP else _validity_stop(start, stop_text)
    return ParsedName(
        stem=stem,
        kind="EOF",
        container=container,
        mission=mission,
        platform_serial=_serial(mission),
        file_class=file_class,
        product_type=product_type,
        site=site,
        created=created,
        validity_start=start,
        validity_stop=stop,
        version=version,
        known_type=product_type in _KNOWN,
    )


def _parse_safe(stem: str, container: Container | None) -> ParsedName:
    mission = _mission(stem)
    if stem[4:8] != "AUX_":
        raise InvalidName("bad-name", f"a SAFE name continues {mission}_AUX_, not {stem[:8]!r}")
    short_type = stem[8:11]
    if not _SAFE_TYPE.fullmatch(short_type) or stem[11:12] != "_":
        raise InvalidName("bad-product-type", f"the SAFE type after 'AUX_' must be 3 characters A-Z, 0-9 in {stem!r}")
    validity = _SAFE_VALIDITY.fullmatch(stem[12:])
    if validity is None:
        raise InvalidName("bad-name", f"{stem[12:]!r} is not V<start>[_<stop>]_G<generation>")
    start_text, stop_text, generated_text = validity.groups()
    start = _date(start_text, "validity start")
    product_type = f"AUX_{short_type}"
    return ParsedName(
        stem=stem,
        kind="SAFE",
        container=container,
        mission=mission,
        platform_serial=_serial(mission),
        file_class=None,
        product_type=product_type,
        site=None,
        created=_date(generated_text, "generation"),
        validity_start=start,
        validity_stop=None if stop_text is None else _validity_stop(start, stop_text),
        version=None,
        known_type=product_type in _KNOWN,
    )


def _mission(stem: str) -> str:
    mission = stem[:3]
    if mission not in MISSIONS or stem[3:4] != "_":
        raise InvalidName("bad-mission", f"{stem[:4]!r} does not start with one of {', '.join(MISSIONS)} and '_'")
    return mission


def _serial(mission: str) -> str | None:
    return None if mission == "S1_" else mission[2]


def _date(text: str, what: str) -> datetime:
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise InvalidName("bad-date", f"{what} {text!r} is not a calendar date and time ({error})") from None


def _validity_stop(start: datetime, text: str) -> datetime:
    stop = _date(text, "validity stop")
    if stop < start:
        raise InvalidName("validity-order", f"validity stop {text} is before the start {start:%Y%m%dT%H%M%S}")
    return stop

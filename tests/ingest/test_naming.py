"""Input names: the contract's examples and types parse to the right fields, every wrapping is recognised, and each
kind of bad name is refused with its own code."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auxip.ingest.naming import FILE_CLASSES, KNOWN_PRODUCT_TYPES, MISSIONS, InvalidName, ParsedName, parse_name

POEORB = "S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942"
ORBPRE = "S1B_OPER_MPL_ORBPRE_20210101T000000_20210108T000000_0007"
CAL = "S1A_AUX_CAL_V20140908T000000_G20190626T100201"
WND = "S1__AUX_WND_V20160423T120000_G20160422T060059"
WAV = "S1C_AUX_WAV_V20210101T000000_20210101T060000_G20201231T210000"


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def test_orbit_file_of_the_contract() -> None:
    assert parse_name(f"{POEORB}.EOF") == ParsedName(
        stem=POEORB,
        kind="EOF",
        container=None,
        mission="S1A",
        platform_serial="A",
        file_class="OPER",
        product_type="AUX_POEORB",
        site="OPOD",
        created=utc(2021, 1, 1, 12, 0, 0),
        validity_start=utc(2020, 12, 31, 22, 59, 42),
        validity_stop=utc(2021, 1, 2, 0, 59, 42),
        version=None,
        known_type=True,
    )


def test_planning_file_has_a_version_and_no_creation_time() -> None:
    parsed = parse_name(f"{ORBPRE}.EOF")
    assert (parsed.mission, parsed.platform_serial, parsed.product_type) == ("S1B", "B", "MPL_ORBPRE")
    assert (parsed.site, parsed.created, parsed.version) == (None, None, 7)
    assert (parsed.validity_start, parsed.validity_stop) == (utc(2021, 1, 1), utc(2021, 1, 8))
    assert parsed.published_name == f"{ORBPRE}.EOF.zip"


def test_safe_with_start_only_is_open_ended() -> None:
    parsed = parse_name(f"{CAL}.SAFE")
    assert (parsed.kind, parsed.mission, parsed.platform_serial, parsed.file_class) == ("SAFE", "S1A", "A", None)
    assert (parsed.product_type, parsed.site, parsed.version, parsed.known_type) == ("AUX_CAL", None, None, True)
    assert parsed.validity_start == utc(2014, 9, 8)
    assert parsed.validity_stop is None
    assert parsed.created == utc(2019, 6, 26, 10, 2, 1)
    assert parsed.published_name == f"{CAL}.SAFE.zip"


def test_unit_independent_safe_has_no_serial() -> None:
    parsed = parse_name(f"{WND}.SAFE")
    assert (parsed.mission, parsed.platform_serial, parsed.product_type) == ("S1_", None, "AUX_WND")
    assert (parsed.validity_start, parsed.created) == (utc(2016, 4, 23, 12), utc(2016, 4, 22, 6, 0, 59))


def test_safe_with_start_and_stop() -> None:
    parsed = parse_name(f"{WAV}.SAFE")
    assert (parsed.validity_start, parsed.validity_stop) == (utc(2021, 1, 1), utc(2021, 1, 1, 6))
    assert parsed.created == utc(2020, 12, 31, 21)


def test_all_nines_stop_of_an_eof_is_open_ended() -> None:
    parsed = parse_name("S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0025.EOF")
    assert (parsed.validity_start, parsed.validity_stop, parsed.version) == (utc(2014, 5, 7, 15, 7, 4), None, 25)


def _name_for(product_type: str) -> str:
    if len(product_type) == 7:
        return f"S1A_{product_type}_V20210101T000000_G20210102T000000.SAFE"
    if product_type.startswith("MPL_"):
        return f"S1A_OPER_{product_type}_20210101T000000_20210102T000000_0001.EOF"
    return f"S1A_OPER_{product_type}_OPOD_20210102T000000_V20210101T000000_20210102T000000.EOF"


@pytest.mark.parametrize("product_type", KNOWN_PRODUCT_TYPES)
def test_every_contract_type_parses_as_known(product_type: str) -> None:
    parsed = parse_name(_name_for(product_type))
    assert parsed.product_type == product_type
    assert parsed.known_type is True
    assert parsed.kind == ("SAFE" if len(product_type) == 7 else "EOF")


def test_contract_list_is_complete() -> None:
    assert len(KNOWN_PRODUCT_TYPES) == 25
    assert len(set(KNOWN_PRODUCT_TYPES)) == 25
    assert {"AUX_OBMEMC", "MSK__LAND_", "AMV_ERRMAT", "MPL_ORBSCT", "AUX_TEC"} <= set(KNOWN_PRODUCT_TYPES)


@pytest.mark.parametrize("name", [_name_for("AUX_XYZABC"), _name_for("AUX_ZZZ")])
def test_well_formed_unknown_type_parses_as_unknown(name: str) -> None:
    assert parse_name(name).known_type is False


@pytest.mark.parametrize(
    ("name", "kind", "container"),
    [
        (f"{POEORB}.EOF", "EOF", None),
        (f"{POEORB}.EOF.zip", "EOF", "zip"),
        (f"{POEORB}.EOF.tar", "EOF", "tar"),
        (f"{POEORB}.EOF.tgz", "EOF", "tgz"),
        (f"{POEORB}.EOF.tar.gz", "EOF", "tgz"),
        (f"{POEORB}.EOF.gz", "EOF", "gz"),
        (f"{POEORB}.EOF.TGZ", "EOF", "tgz"),
        (f"{POEORB}.TGZ", "EOF", "tgz"),
        (f"{POEORB}.tgz", "EOF", "tgz"),
        (f"{ORBPRE}.TGZ", "EOF", "tgz"),
        (f"{CAL}.SAFE", "SAFE", None),
        (f"{CAL}.SAFE.zip", "SAFE", "zip"),
        (f"{CAL}.SAFE.tar", "SAFE", "tar"),
        (f"{CAL}.SAFE.tgz", "SAFE", "tgz"),
        (f"{CAL}.SAFE.tar.gz", "SAFE", "tgz"),
        (f"{CAL}.SAFE.gz", "SAFE", "gz"),
        (f"{CAL}.TGZ", "SAFE", "tgz"),
        (f"{WND}.tgz", "SAFE", "tgz"),
    ],
)
def test_container_forms(name: str, kind: str, container: str | None) -> None:
    parsed = parse_name(name)
    assert (parsed.kind, parsed.container) == (kind, container)
    assert name.startswith(parsed.stem)
    assert parsed.published_name == f"{parsed.stem}.{kind}.zip"


INVALID = [
    ("", "empty-name"),
    ("X" * 252 + ".EOF", "name-too-long"),
    (f"a/{POEORB}.EOF", "bad-characters"),
    (f"..\\{POEORB}.EOF", "bad-characters"),
    ("a/b.EOF", "bad-characters"),
    (f"{POEORB} .EOF", "bad-characters"),
    (f"{POEORB}.EOF\x00", "bad-characters"),
    (f"{POEORB}.txt", "unknown-extension"),
    (f"{POEORB}.EOF.txt", "unknown-extension"),
    (f"{POEORB}.eof", "unknown-extension"),
    (f"{POEORB}.zip", "unknown-extension"),
    (POEORB, "unknown-extension"),
    (f"S2A{POEORB[3:]}.EOF", "bad-mission"),
    (f"S1E{POEORB[3:]}.EOF", "bad-mission"),
    (f"S1AX{POEORB[3:]}.EOF", "bad-mission"),
    (f"S1E{CAL[3:]}.SAFE", "bad-mission"),
    ("S1A_PROD_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF", "bad-file-class"),
    ("S1A_oper_AUX_POEORB_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF", "bad-file-class"),
    ("S1A_OPER_AUX_POEOR_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF", "bad-product-type"),
    ("S1A_OPER_aux_poeorb_OPOD_20210101T120000_V20201231T225942_20210102T005942.EOF", "bad-product-type"),
    ("S1A_AUX_CALX_V20140908T000000_G20190626T100201.SAFE", "bad-product-type"),
    ("S1A_AUX_CA_V20140908T000000_G20190626T100201.SAFE", "bad-product-type"),
    ("S1A_OPER_AUX_POEORB_OPOD_20210101T120000_20201231T225942_20210102T005942.EOF", "bad-name"),
    ("S1A_OPER_MPL_ORBPRE_20210101T000000_20210108T000000_00001.EOF", "bad-name"),
    ("S1A_OPER_MPL_ORBPRE_20210101T000000_20210108T000000.EOF", "bad-name"),
    ("S1A_AUX_CAL_20140908T000000_G20190626T100201.SAFE", "bad-name"),
    ("S1A_AUX_CAL_V20140908T000000_20190626T100201.SAFE", "bad-name"),
    (f"{POEORB}.SAFE", "bad-name"),
    ("S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20211301T225942_20211302T005942.EOF", "bad-date"),
    ("S1A_OPER_AUX_POEORB_OPOD_20210230T120000_V20201231T225942_20210102T005942.EOF", "bad-date"),
    ("S1A_OPER_AUX_POEORB_OPOD_20210101T240000_V20201231T225942_20210102T005942.EOF", "bad-date"),
    ("S1A_AUX_CAL_V20140908T000060_G20190626T100201.SAFE", "bad-date"),
    ("S1A_AUX_CAL_V00000908T000000_G20190626T100201.SAFE", "bad-date"),
    ("S1A_AUX_CAL_V20140908T000000_99999999T999999_G20190626T100201.SAFE", "bad-date"),
    ("S1A_OPER_AUX_POEORB_OPOD_20210101T120000_V20210102T005942_20201231T225942.EOF", "validity-order"),
    ("S1A_OPER_MPL_ORBPRE_20210108T000000_20210101T000000_0001.EOF", "validity-order"),
    ("S1A_AUX_WAV_V20210101T060000_20210101T000000_G20201231T210000.SAFE", "validity-order"),
]


@pytest.mark.parametrize(("name", "code"), INVALID)
def test_invalid_names_are_refused_with_their_code(name: str, code: str) -> None:
    with pytest.raises(InvalidName) as caught:
        parse_name(name)
    assert caught.value.code == code
    assert str(caught.value).startswith(f"{code}: ")
    assert caught.value.detail
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert (copy.code, copy.detail) == (code, caught.value.detail)


def test_length_limit_is_255() -> None:
    # At exactly 255 characters the name is judged on its shape, one more and on its length.
    with pytest.raises(InvalidName) as at_limit:
        parse_name("X" * 251 + ".EOF")
    assert at_limit.value.code == "bad-mission"
    with pytest.raises(InvalidName) as over:
        parse_name("X" * 252 + ".EOF")
    assert over.value.code == "name-too-long"


# Property: any name assembled from valid parts parses to those parts, and the stem rebuilt from them is identical.

dates = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)).map(
    lambda value: value.replace(microsecond=0, tzinfo=UTC)
)
eof_types = st.sampled_from([t for t in KNOWN_PRODUCT_TYPES if len(t) == 10]) | st.text(
    "ABCXYZ019_", min_size=10, max_size=10
)
safe_types = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=3, max_size=3).map(lambda t: f"AUX_{t}")
containers = st.sampled_from(["", ".zip", ".tar", ".tgz", ".tar.gz", ".gz"])


def rebuild(parsed: ParsedName) -> str:
    start = stamp(parsed.validity_start)
    if parsed.kind == "SAFE":
        assert parsed.created is not None
        stop = "" if parsed.validity_stop is None else f"_{stamp(parsed.validity_stop)}"
        return f"{parsed.mission}_{parsed.product_type}_V{start}{stop}_G{stamp(parsed.created)}"
    stop = "99999999T999999" if parsed.validity_stop is None else stamp(parsed.validity_stop)
    prefix = f"{parsed.mission}_{parsed.file_class}_{parsed.product_type}"
    if parsed.version is not None:
        return f"{prefix}_{start}_{stop}_{parsed.version:04d}"
    assert parsed.created is not None
    return f"{prefix}_{parsed.site}_{stamp(parsed.created)}_V{start}_{stop}"


@st.composite
def valid_names(draw: st.DrawFn) -> tuple[str, str, dict[str, object]]:
    mission = draw(st.sampled_from(MISSIONS))
    first, second, created = sorted(draw(st.lists(dates, min_size=3, max_size=3)))
    open_ended = draw(st.booleans())
    stop = None if open_ended else second
    form = draw(st.sampled_from(["orbit", "planning", "safe"]))
    if form == "safe":
        product_type = draw(safe_types)
        validity = f"V{stamp(first)}" + ("" if stop is None else f"_{stamp(stop)}")
        stem = f"{mission}_{product_type}_{validity}_G{stamp(created)}"
        expected: dict[str, object] = {"kind": "SAFE", "file_class": None, "created": created, "version": None}
    else:
        file_class = draw(st.sampled_from(FILE_CLASSES))
        product_type = draw(eof_types)
        stop_text = "99999999T999999" if stop is None else stamp(stop)
        if form == "planning":
            version = draw(st.integers(0, 9999))
            stem = f"{mission}_{file_class}_{product_type}_{stamp(first)}_{stop_text}_{version:04d}"
            expected = {"kind": "EOF", "file_class": file_class, "created": None, "version": version, "site": None}
        else:
            site = draw(st.text("ABCOPDZ09_", min_size=4, max_size=4))
            stem = f"{mission}_{file_class}_{product_type}_{site}_{stamp(created)}_V{stamp(first)}_{stop_text}"
            expected = {"kind": "EOF", "file_class": file_class, "created": created, "version": None, "site": site}
    expected |= {
        "mission": mission,
        "platform_serial": None if mission == "S1_" else mission[2],
        "product_type": product_type,
        "validity_start": first,
        "validity_stop": stop,
        "known_type": product_type in KNOWN_PRODUCT_TYPES,
    }
    bare = draw(st.booleans())
    name = f"{stem}.TGZ" if bare else f"{stem}.{expected['kind']}{draw(containers)}"
    return name, stem, expected


@given(valid_names())
def test_names_from_valid_parts_parse_and_round_trip(case: tuple[str, str, dict[str, object]]) -> None:
    name, stem, expected = case
    parsed = parse_name(name)
    assert parsed.stem == stem
    assert rebuild(parsed) == stem
    assert {field: getattr(parsed, field) for field in expected} == expected
    assert parsed.published_name == f"{stem}.{parsed.kind}.zip"

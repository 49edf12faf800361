"""$filter on Products: for every query shape of the contract and of ESA's conformance suite, exactly which
products come back (keys of `conftest.CATALOG`, listed in publication order unless the case orders otherwise)."""

from __future__ import annotations

import pytest

from .conftest import CATALOG, Catalog

N = {key: record.name for key, record in CATALOG.items()}
ALL = ["POE", "RES", "CAL", "WND", "PRE", "WAV", "wav"]


def _string_attr(name: str, condition: str, var: str = "att") -> str:
    return (
        f"Attributes/OData.CSC.StringAttribute/any({var}:{var}/Name eq '{name}' and "
        f"{var}/OData.CSC.StringAttribute/Value {condition})"
    )


def _typed_attr(cast: str, name: str, condition: str) -> str:
    return (
        f"Attributes/OData.CSC.{cast}Attribute/any(att:att/Name eq '{name}' and "
        f"att/OData.CSC.{cast}Attribute/Value {condition})"
    )


NAME_CASES = [
    (f"Name eq '{N['CAL']}'", ["CAL"]),
    (f"Name eq '{N['GONE']}'", []),  # evicted: never listed
    ("startswith(Name,'S1A')", ["POE", "CAL", "PRE"]),
    ("startswith(Name,'S1A_OPER')", ["POE", "PRE"]),
    ("startswith(Name,'s1a')", []),  # case-sensitive
    ("endswith(Name,'.EOF.zip')", ["POE", "RES", "PRE"]),
    ("endswith(Name,'.eof.zip')", []),
    ("contains(Name,'_AUX_')", ["POE", "RES", "CAL", "WND", "WAV"]),
    ("contains(Name,'_aux_')", ["wav"]),
    ("contains(Name,'_AUX_') or contains(Name,'_AX_')", ["POE", "RES", "CAL", "WND", "WAV"]),
    # Wildcards of LIKE and GLOB are literal characters.
    ("contains(Name,'A_X')", []),
    ("contains(Name,'%')", []),
    ("startswith(Name,'S1%')", []),
    ("startswith(Name,'S1?')", []),
    ("startswith(Name,'S1[AB]')", []),
    ("contains(Name,'*')", []),
    ("contains(Name,'')", ALL),
    ("startswith(Name,'S1A') and endswith(Name,'.SAFE.zip')", ["CAL"]),
    ("startswith(Name,'S1')  and not contains(Name,'_OPER_')", ["CAL", "WND", "WAV", "wav"]),
    ("(startswith(Name,'S1A') or startswith(Name,'S1B')) and contains(Name,'ORB')", ["POE", "RES", "PRE"]),
    ("startswith(Name,'S1A_AUX') eq true", ["CAL"]),
    ("contains(Name,'OPER') eq false", ["CAL", "WND", "WAV", "wav"]),
    (f"Name in ('{N['CAL']}','{N['WND']}','nope')", ["CAL", "WND"]),
    (f"Name in ('{N['CAL']}')", ["CAL"]),
    (f"not (Name in ('{N['CAL']}','{N['WND']}'))", ["POE", "RES", "PRE", "WAV", "wav"]),
    ("not(startswith(Name,'S1A'))", ["RES", "WND", "WAV", "wav"]),
    (
        f"((startswith(Name,'S1A') and (ContentLength eq 1000)) or ((Name eq '{N['WND']}')))",
        ["POE", "WND", "PRE"],
    ),
    ("ContentType eq 'application/octet-stream'", ALL),
    ("ContentType eq 'APPLICATION/octet-stream'", []),
]

NUMBER_CASES = [
    ("ContentLength eq 2000", ["RES", "WND"]),
    ("ContentLength ne 1000", ["RES", "CAL", "WND", "WAV", "wav"]),
    ("ContentLength gt 1000", ["RES", "CAL", "WND", "WAV"]),
    ("ContentLength ge 2000", ["RES", "CAL", "WND", "WAV"]),
    ("ContentLength lt 1000", ["wav"]),
    ("ContentLength le 1000", ["POE", "PRE", "wav"]),
    ("1000 lt ContentLength", ["RES", "CAL", "WND", "WAV"]),
    ("ContentLength in (500, 3000)", ["CAL", "wav"]),
]

# Every accepted DateTimeOffset form of the same instant, 2021-01-01T08:03:00Z (RES's OriginDate).
SAME_INSTANT = [
    "2021-01-01T08:03:00.000Z",
    "2021-01-01T08:03:00Z",
    "2021-01-01T08:03:00.0Z",
    "2021-01-01T08:03:00.00Z",
    "2021-01-01T08:03:00.000000Z",
    "2021-01-01T08:03:00.0000000Z",
    "2021-01-01T08:03:00+00:00",
    "2021-01-01T08:03:00.000+00:00",
    "2021-01-01T09:03:00+01:00",
    "2021-01-01T07:03:00-01:00",
    "2021-01-01T09:03:00 01:00",  # '+' decoded to a space by a form decoder
    "2021-01-01T08:03:00",  # no offset: UTC
    "2021-01-01T08:03Z",
    "2021-01-01t08:03:00z",
]

DATE_CASES = [
    *[(f"OriginDate ge {literal}", ["POE", "RES", "wav"]) for literal in SAME_INSTANT],
    *[(f"OriginDate eq {literal}", ["RES"]) for literal in SAME_INSTANT],
    ("OriginDate ge 2021-01-01T00:00:00.000Z", ["POE", "RES", "PRE", "WAV", "wav"]),
    # Finer than a microsecond: 08:03:00.0000001 is after RES's 08:03:00.
    ("OriginDate gt 2021-01-01T08:03:00.0000001Z", ["POE", "wav"]),
    ("OriginDate ge 2021-01-01T08:03:00.0000001Z", ["POE", "wav"]),
    ("OriginDate lt 2021-01-01T08:03:00.0000001Z", ["RES", "CAL", "WND", "PRE", "WAV"]),
    ("OriginDate le 2021-01-01T08:03:00.0000001Z", ["RES", "CAL", "WND", "PRE", "WAV"]),
    ("OriginDate eq 2021-01-01T08:03:00.0000001Z", []),
    ("OriginDate ne 2021-01-01T08:03:00.0000001Z", ALL),
    ("OriginDate gt 2021-01-01T08:03:00.1Z", ["POE", "wav"]),
    ("OriginDate lt 2021-01-01", ["CAL", "WND"]),  # a date means its midnight UTC
    ("OriginDate ge 2021-01-01", ["POE", "RES", "PRE", "WAV", "wav"]),
    ("EvictionDate ge 2021-04-01T00:00:00.000Z", ["POE", "CAL", "WND", "WAV", "wav"]),
    ("EvictionDate lt 2021-02-01T00:00:00Z", ["RES"]),
    (
        "ContentDate/Start ge 2021-01-01T00:00:00.000Z and ContentDate/End le 2021-01-03T00:00:00.000Z",
        ["RES", "WAV", "wav"],
    ),
    # Open-ended validity (stored NULL) is ContentDate/End = 9999-12-31T23:59:59.999Z, as the API renders it.
    ("ContentDate/End eq null", []),
    ("ContentDate/End ne null", ["POE", "RES", "CAL", "WND", "PRE", "WAV", "wav"]),
    ("ContentDate/End eq 9999-12-31T23:59:59.999Z", ["CAL", "WND"]),
    ("ContentDate/End gt 2100-01-01T00:00:00Z", ["CAL", "WND"]),
    ("ContentDate/End lt 2021-01-02T00:00:00Z", ["RES"]),
    ("not (ContentDate/End lt 2021-01-02T00:00:00Z)", ["POE", "CAL", "WND", "PRE", "WAV", "wav"]),
    ("ContentDate/End ne 2021-01-02T00:00:00Z", ["POE", "RES", "CAL", "WND", "PRE", "wav"]),
    ("ContentDate/End in (2021-01-02T00:00:00Z, 2021-01-08T00:00:00.000Z)", ["PRE", "WAV"]),
    # The conformance suite's ProductTypeCode spliced in front: `and` binds tighter than `or`.
    (
        "contains(Name,'_AUX_') or contains(Name,'_AX_') and ContentDate/Start ge 2021-01-01T00:00:00.000Z "
        "and ContentDate/End le 2021-01-03T00:00:00.000Z",
        ["POE", "RES", "CAL", "WND", "WAV"],
    ),
    (
        "(contains(Name,'_AUX_') or contains(Name,'_AX_')) and ContentDate/Start ge 2021-01-01T00:00:00.000Z "
        "and ContentDate/End le 2021-01-03T00:00:00.000Z",
        ["RES", "WAV"],
    ),
]

STRING_ATTRIBUTE_CASES = [
    (_string_attr("productType", "eq 'AUX_WND'"), ["WND"]),
    (_string_attr("productType", "eq 'AUX_WND'", var="x"), ["WND"]),
    (
        "Attributes/OData.CSC.StringAttribute/any(p:p/Name eq 'productType' and p/Value eq 'AUX_WND')",
        ["WND"],
    ),
    (_string_attr("productType", "ne 'AUX_WND'"), ["POE", "RES", "CAL", "PRE", "WAV", "wav"]),
    (_string_attr("productType", "in ('AUX_POEORB','AUX_RESORB','MPL_ORBPRE')"), ["POE", "RES", "PRE"]),
    (_string_attr("productType", "in ('AUX_WAV')"), ["WAV"]),
    (_string_attr("processorVersion", "gt '3.10'"), ["WAV"]),
    (_string_attr("processorVersion", "ge '3.10'"), ["CAL", "WND", "WAV"]),
    (_string_attr("processorVersion", "lt '3.20'"), ["CAL", "WND"]),
    (_string_attr("processorVersion", "le '3.10'"), ["CAL", "WND"]),
    (_string_attr("timeliness", "eq 'Nominal'"), ["POE"]),
    (_string_attr("instrumentShortName", "eq 'SAR'"), ["CAL", "WND", "WAV"]),
    (_string_attr("processingCenter", "eq 'OPOD'"), ["POE", "RES"]),
    (_string_attr("platformSerialIdentifier", "eq 'B'"), ["RES", "WAV"]),  # not wav's 'b'
    (_string_attr("platformShortName", "eq 'SENTINEL-1'"), ALL),
    (
        _string_attr("platformShortName", "eq 'SENTINEL-1'")
        + " and "
        + _string_attr("platformSerialIdentifier", "eq 'A'"),
        ["POE", "CAL", "PRE"],
    ),
    (_string_attr("productType", "eq 'AUX_CAL'") + " and " + _string_attr("processorVersion", "eq '3.10'"), ["CAL"]),
    (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "contains(att/OData.CSC.StringAttribute/Value,'ORB'))",
        ["POE", "RES", "PRE"],
    ),
    ("not " + _string_attr("productType", "eq 'AUX_WND'"), ["POE", "RES", "CAL", "PRE", "WAV", "wav"]),
    (
        _string_attr("productType", "eq 'AUX_CAL'") + " or " + _typed_attr("Integer", "orbitNumber", "gt 30000"),
        ["POE", "CAL", "PRE"],
    ),
    (
        "("
        + _string_attr("productType", "eq 'AUX_CAL'")
        + " or "
        + _string_attr("productType", "eq 'AUX_WAV'")
        + ") and not "
        + _string_attr("platformSerialIdentifier", "eq 'B'"),
        ["CAL"],
    ),
    # The name and value must hold for the same attribute row.
    ("Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'timeliness' and a/Value eq 'OPOD')", []),
    (
        "Attributes/OData.CSC.StringAttribute/any(a:a/Name eq 'productType') and startswith(Name,'S1B')",
        ["RES", "WAV", "wav"],
    ),
]

INTEGER_CASES = [
    (_typed_attr("Integer", "orbitNumber", "eq 35000"), ["POE"]),
    (_typed_attr("Integer", "orbitNumber", "ne 35000"), ["RES", "PRE"]),
    (_typed_attr("Integer", "orbitNumber", "gt 24000"), ["POE", "PRE"]),
    (_typed_attr("Integer", "orbitNumber", "ge 24000"), ["POE", "RES", "PRE"]),
    (_typed_attr("Integer", "orbitNumber", "lt 35001"), ["POE", "RES"]),
    (_typed_attr("Integer", "orbitNumber", "le 35000"), ["POE", "RES"]),
    (_typed_attr("Integer", "orbitNumber", "in (24000, 35001)"), ["RES", "PRE"]),
    ("Attributes/OData.CSC.IntegerAttribute/all(a:a/Value gt 30000)", ["POE", "CAL", "WND", "PRE", "WAV", "wav"]),
]

DOUBLE_CASES = [
    (_typed_attr("Double", "dataCoverage", "eq 99.5"), ["POE"]),
    (_typed_attr("Double", "dataCoverage", "ne 99.5"), ["RES", "CAL", "PRE", "WAV"]),
    (_typed_attr("Double", "dataCoverage", "gt 87.25"), ["POE", "CAL"]),
    (_typed_attr("Double", "dataCoverage", "ge 87.25"), ["POE", "RES", "CAL"]),
    (_typed_attr("Double", "dataCoverage", "lt 50"), ["PRE"]),
    (_typed_attr("Double", "dataCoverage", "le 50.0"), ["PRE", "WAV"]),
    (_typed_attr("Double", "dataCoverage", "eq 100"), ["CAL"]),
    (_typed_attr("Double", "dataCoverage", "gt -1.5"), ["POE", "RES", "CAL", "WAV"]),
    (_typed_attr("Double", "dataCoverage", "lt 1e2"), ["POE", "RES", "PRE", "WAV"]),
    (_typed_attr("Double", "dataCoverage", "in (50, 87.25)"), ["RES", "WAV"]),
]

DATETIME_ATTRIBUTE_CASES = [
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T12:00:00.000Z"), ["POE"]),
    (
        _typed_attr("DateTimeOffset", "processingDate", "ne 2021-01-01T12:00:00.000Z"),
        ["RES", "CAL", "WND", "PRE", "WAV", "wav"],
    ),
    (_typed_attr("DateTimeOffset", "processingDate", "gt 2021-01-01T01:00:00Z"), ["POE", "RES", "wav"]),
    (_typed_attr("DateTimeOffset", "processingDate", "ge 2021-01-01T01:00:00Z"), ["POE", "RES", "WAV", "wav"]),
    (_typed_attr("DateTimeOffset", "processingDate", "lt 2021-01-01T00:00:00.123456Z"), ["CAL", "WND"]),
    (_typed_attr("DateTimeOffset", "processingDate", "le 2021-01-01T00:00:00.123456Z"), ["CAL", "WND", "PRE"]),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T00:00:00.123456Z"), ["PRE"]),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T00:00:00.1234560Z"), ["PRE"]),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T00:00:00.1234561Z"), []),
    (_typed_attr("DateTimeOffset", "processingDate", "gt 2021-01-01T00:00:00.1234561Z"), ["POE", "RES", "WAV", "wav"]),
    (_typed_attr("DateTimeOffset", "processingDate", "lt 2021-01-01T00:00:00.1234561Z"), ["CAL", "WND", "PRE"]),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T00:00:00.12Z"), []),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T01:00:00+00:00"), ["WAV"]),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T02:00:00+01:00"), ["WAV"]),
    (_typed_attr("DateTimeOffset", "processingDate", "eq 2021-01-01T01:00:00"), ["WAV"]),
    (_typed_attr("DateTimeOffset", "beginningDateTime", "eq 2016-04-23T12:00:00.000Z"), ["WND"]),
    (_typed_attr("DateTimeOffset", "endingDateTime", "eq 2021-01-01T07:10:00.000Z"), ["RES"]),
    (_typed_attr("DateTimeOffset", "processingDate", "lt 2020-01-01"), ["CAL", "WND"]),
]

BOOLEAN_CASES = [
    (_typed_attr("Boolean", "reprocessed", "eq true"), ["CAL", "WAV"]),
    (_typed_attr("Boolean", "reprocessed", "eq false"), ["POE", "RES", "WND", "PRE"]),
    (_typed_attr("Boolean", "reprocessed", "ne true"), ["POE", "RES", "WND", "PRE"]),
    (_typed_attr("Boolean", "reprocessed", "gt false"), ["CAL", "WAV"]),
    (_typed_attr("Boolean", "reprocessed", "ge false"), ["POE", "RES", "CAL", "WND", "PRE", "WAV"]),
    (_typed_attr("Boolean", "reprocessed", "lt true"), ["POE", "RES", "WND", "PRE"]),
    (_typed_attr("Boolean", "reprocessed", "le true"), ["POE", "RES", "CAL", "WND", "PRE", "WAV"]),
    (_typed_attr("Boolean", "reprocessed", "in (true)"), ["CAL", "WAV"]),
    (
        "Attributes/OData.CSC.BooleanAttribute/any(a:a/Name eq 'reprocessed' and a/OData.CSC.BooleanAttribute/Value)",
        ["CAL", "WAV"],
    ),
    ("Attributes/OData.CSC.BooleanAttribute/any()", ["POE", "RES", "CAL", "WND", "PRE", "WAV"]),
]

CASES = (
    NAME_CASES
    + NUMBER_CASES
    + DATE_CASES
    + STRING_ATTRIBUTE_CASES
    + INTEGER_CASES
    + DOUBLE_CASES
    + DATETIME_ATTRIBUTE_CASES
    + BOOLEAN_CASES
)


@pytest.mark.parametrize(("filter_text", "expected"), CASES, ids=[case[0][:90] for case in CASES])
def test_filter_result_set(catalog: Catalog, filter_text: str, expected: list[str]) -> None:
    assert catalog.keys(filter_text) == expected


def test_filter_by_id(catalog: Catalog) -> None:
    assert catalog.keys(f"Id eq {catalog.ids['CAL']}") == ["CAL"]
    assert catalog.keys(f"Id eq '{catalog.ids['WND']}'") == ["WND"]
    assert catalog.keys(f"Id in ({catalog.ids['CAL']}, {catalog.ids['GONE']})") == ["CAL"]
    assert catalog.keys(f"Id ne {catalog.ids['CAL']}") == [k for k in ALL if k != "CAL"]


@pytest.mark.parametrize("digits", [0, 1, 3, 6, 7])
def test_polling_by_publication_date(catalog: Catalog, digits: int) -> None:
    """The pollers' query, with the last seen PublicationDate written with 0 to 7 fraction digits.

    The products were published microseconds apart, so a truncated literal may fall before earlier products too:
    the expectation is computed from the stored dates and the truncated instant.
    """
    dates = catalog.publication_dates
    seen = dates["CAL"]
    fraction = f"{seen.microsecond:06d}0"[:digits]
    text = seen.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + "Z"
    bound = seen.replace(microsecond=int(fraction.ljust(6, "0")[:6]) if digits else 0)
    expected_gt = [key for key in ALL if dates[key] > bound]
    assert "CAL" not in expected_gt or digits < 6
    assert expected_gt[-4:] == ["WND", "PRE", "WAV", "wav"]
    params = {"$filter": f"PublicationDate gt {text}", "$orderby": "PublicationDate asc", "$top": "1000"}
    assert catalog.query(params)[0] == expected_gt
    assert catalog.keys(f"PublicationDate ge {text}") == [key for key in ALL if dates[key] >= bound]


def test_publication_date_window(catalog: Catalog) -> None:
    start = catalog.publication_dates["RES"].isoformat().replace("+00:00", "Z")
    end = catalog.publication_dates["PRE"].isoformat()  # +00:00 offset form
    assert catalog.keys(f"PublicationDate ge {start} and PublicationDate lt {end}") == ["RES", "CAL", "WND"]

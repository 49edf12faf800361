"""Metadata from EOF headers and SAFE manifests: exact attributes per kind, each disagreement with the name refused
naming its field, and hostile or broken XML refused as unreadable."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auxip.ingest.metadata import MetadataError, ProductMetadata, extract_metadata
from auxip.ingest.naming import parse_name
from auxip_testing.sample_feed import write_eof, write_safe

CREATED = datetime(2021, 1, 1, 12, 14, 25, tzinfo=UTC)
START = datetime(2020, 12, 31, 22, 59, 42, tzinfo=UTC)
STOP = START + timedelta(hours=26)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<{root}><File_Name>&lol9;</File_Name></{root}>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<{root}><File_Name>&secret;</File_Name></{root}>
"""

# The header of a real POEORB file (default namespace, signed orbit, fractional OSV times), shortened to one OSV.
REAL_POEORB = """<?xml version="1.0" ?>
<Earth_Explorer_File xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://eop-cfi.esa.int/CFI"
 xsi:schemaLocation="http://eop-cfi.esa.int/CFI EO_OPER_AUX_ORBRES_0101.XSD" schemaVersion="1.1">
  <Earth_Explorer_Header>
    <Fixed_Header>
      <File_Name>S1A_OPER_AUX_POEORB_OPOD_20210101T121425_V20201211T225942_20201213T005942</File_Name>
      <File_Description>Precise Orbit Ephemerides (POE) Orbit File</File_Description>
      <Notes></Notes>
      <Mission>Sentinel-1A</Mission>
      <File_Class>OPER</File_Class>
      <File_Type>AUX_POEORB</File_Type>
      <Validity_Period>
        <Validity_Start>UTC=2020-12-11T22:59:42</Validity_Start>
        <Validity_Stop>UTC=2020-12-13T00:59:42</Validity_Stop>
      </Validity_Period>
      <File_Version>0001</File_Version>
      <Source>
        <System>OPOD</System>
        <Creator>OPOD</Creator>
        <Creator_Version>0.0</Creator_Version>
        <Creation_Date>UTC=2021-01-01T12:14:25</Creation_Date>
      </Source>
    </Fixed_Header>
    <Variable_Header>
      <Ref_Frame>EARTH_FIXED</Ref_Frame>
      <Time_Reference>UTC</Time_Reference>
    </Variable_Header>
  </Earth_Explorer_Header>
  <Data_Block type="xml">
    <List_of_OSVs count="1">
      <OSV>
        <TAI>TAI=2020-12-11T23:00:19.000000</TAI>
        <UTC>UTC=2020-12-11T22:59:42.000000</UTC>
        <UT1>UT1=2020-12-11T22:59:41.823541</UT1>
        <Absolute_Orbit>+35632</Absolute_Orbit>
        <X unit="m">-1196468.029010</X>
        <Y unit="m">-6895453.131628</Y>
        <Z unit="m">0.000000</Z>
        <VX unit="m/s">-1601.190800</VX>
        <VY unit="m/s">219.839962</VY>
        <VZ unit="m/s">7396.282845</VZ>
        <Quality>NOMINAL</Quality>
      </OSV>
    </List_of_OSVs>
  </Data_Block>
</Earth_Explorer_File>
"""


def metadata_of(path: Path) -> ProductMetadata:
    return extract_metadata(parse_name(path.name), path)


def refusal(path: Path) -> MetadataError:
    with pytest.raises(MetadataError) as caught:
        metadata_of(path)
    return caught.value


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_real_poeorb_header(tmp_path: Path) -> None:
    path = tmp_path / "S1A_OPER_AUX_POEORB_OPOD_20210101T121425_V20201211T225942_20201213T005942.EOF"
    path.write_text(REAL_POEORB)
    start, stop = datetime(2020, 12, 11, 22, 59, 42, tzinfo=UTC), datetime(2020, 12, 13, 0, 59, 42, tzinfo=UTC)
    assert metadata_of(path) == ProductMetadata(
        content_date_start=start,
        content_date_end=stop,
        attributes={
            "productType": "AUX_POEORB",
            "platformShortName": "SENTINEL-1",
            "platformSerialIdentifier": "A",
            "processingCenter": "OPOD",
            "processorName": "OPOD",
            "processorVersion": "0.0",
            "instrumentShortName": "SAR",
            "timeliness": "NTC",
            "beginningDateTime": start,
            "endingDateTime": stop,
            "processingDate": datetime(2021, 1, 1, 12, 14, 25, tzinfo=UTC),
            "orbitNumber": 35632,
        },
    )


@pytest.mark.parametrize(("product_type", "timeliness"), [("AUX_RESORB", "NRT"), ("AUX_PREORB", "Fast")])
def test_generated_orbit_files(tmp_path: Path, product_type: str, timeliness: str) -> None:
    path = write_eof(tmp_path, product_type, "B", CREATED, START, STOP, osv_count=5)
    metadata = metadata_of(path)
    assert (metadata.content_date_start, metadata.content_date_end) == (START, STOP)
    attributes = dict(metadata.attributes)
    orbit = attributes.pop("orbitNumber")
    assert attributes == {
        "productType": product_type,
        "platformShortName": "SENTINEL-1",
        "platformSerialIdentifier": "B",
        "processingCenter": "OPOD",
        "processorName": "OPOD",
        "processorVersion": "3.1",
        "instrumentShortName": "SAR",
        "timeliness": timeliness,
        "beginningDateTime": START,
        "endingDateTime": STOP,
        "processingDate": CREATED,
    }
    # S1B flew from April 2016: about 4.7 years at 175 orbits per 12 days.
    assert isinstance(orbit, int)
    assert 24_000 < orbit < 26_000


def test_planning_file_takes_its_processing_date_from_the_header(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "MPL_ORBPRE", "A", CREATED, START, START + timedelta(days=10), osv_count=3)
    assert parse_name(path.name).created is None
    attributes = metadata_of(path).attributes
    assert attributes["processingDate"] == CREATED
    assert attributes["processingCenter"] == "FOS"
    assert "timeliness" not in attributes
    assert isinstance(attributes["orbitNumber"], int)


def test_unit_independent_open_ended_eof(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "MPL_ORBSCT", None, CREATED, START, None, osv_count=2)
    assert path.name.startswith("S1__OPER_MPL_ORBSCT_")
    assert "<Validity_Stop>UTC=9999-99-99T99:99:99</Validity_Stop>" in path.read_text()
    metadata = metadata_of(path)
    assert metadata.content_date_end is None
    assert "endingDateTime" not in metadata.attributes
    assert "platformSerialIdentifier" not in metadata.attributes


def test_non_orbit_eof_has_no_orbit_number(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "AMH_ERRMAT", "C", CREATED, START, STOP, osv_count=4)
    attributes = metadata_of(path).attributes
    assert attributes["productType"] == "AMH_ERRMAT"
    assert "orbitNumber" not in attributes
    assert "timeliness" not in attributes


def test_header_fractions_are_compared_to_the_second(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, STOP, osv_count=1)
    edit(path, "<Validity_Start>UTC=2020-12-31T22:59:42<", "<Validity_Start>UTC=2020-12-31T22:59:42.654321<")
    metadata = metadata_of(path)
    assert metadata.content_date_start == START.replace(microsecond=654321)


def test_large_orbit_file(tmp_path: Path) -> None:
    # A whole POEORB day: 9361 OSVs, about 4 MB.
    path = write_eof(tmp_path, "AUX_POEORB", "A", CREATED, START, STOP, osv_count=9361)
    assert path.stat().st_size > 4_000_000
    assert metadata_of(path).attributes["orbitNumber"] == parse_orbit(path)


def parse_orbit(path: Path) -> int:
    text = path.read_text()
    first = text.index("<Absolute_Orbit>") + len("<Absolute_Orbit>")
    return int(text[first : text.index("</Absolute_Orbit>", first)])


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("<File_Name>S1A_OPER", "<File_Name>S1B_OPER", "File_Name"),
        ("<File_Type>AUX_RESORB", "<File_Type>AUX_POEORB", "File_Type"),
        ("<Mission>Sentinel-1A", "<Mission>Sentinel-1B", "Mission"),
        ("<Validity_Start>UTC=2020-12-31T22:59:42", "<Validity_Start>UTC=2020-12-31T22:59:43", "Validity_Start"),
        ("<Validity_Start>UTC=2020-12-31T22:59:42", "<Validity_Start>UTC=9999-99-99T99:99:99", "Validity_Start"),
        ("<Validity_Stop>UTC=2021-01-02T00:59:42", "<Validity_Stop>UTC=2021-01-02T00:59:41", "Validity_Stop"),
        ("<Validity_Stop>UTC=2021-01-02T00:59:42", "<Validity_Stop>UTC=9999-99-99T99:99:99", "Validity_Stop"),
    ],
)
def test_header_disagreeing_with_the_name(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, STOP, osv_count=2)
    edit(path, old, new)
    error = refusal(path)
    assert error.code == "header-mismatch"
    assert field in error.detail


def test_mission_is_compared_ignoring_case(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, STOP, osv_count=2)
    edit(path, "<Mission>Sentinel-1A", "<Mission>SENTINEL-1A")
    assert metadata_of(path).attributes["platformSerialIdentifier"] == "A"


def test_unit_independent_header_must_not_name_a_unit(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "MPL_ORBSCT", None, CREATED, START, None, osv_count=1)
    edit(path, "<Mission>Sentinel-1<", "<Mission>Sentinel-1A<")
    assert refusal(path).code == "header-mismatch"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("</Earth_Explorer_File>", "</Earth_Explorer_Fil>", "unreadable-header"),
        ("<Creation_Date>UTC=2021-01-01T12:14:25", "<Creation_Date>UTC=2021-13-01T12:14:25", "unreadable-header"),
        ("<Creation_Date>UTC=", "<Creation_Date>TAI=", "unreadable-header"),
        ("<Absolute_Orbit>+", "<Absolute_Orbit>x", "unreadable-header"),
        ("<Creation_Date>UTC=2021-01-01T12:14:25</Creation_Date>", "", "incomplete-header"),
        ("<Creator>OPOD</Creator>", "<Creator> </Creator>", "incomplete-header"),
        ("Fixed_Header>", "Fixed_Headers>", "incomplete-header"),
    ],
)
def test_broken_headers(tmp_path: Path, old: str, new: str, code: str) -> None:
    path = write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, STOP, osv_count=2)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    assert refusal(path).code == code


def test_truncated_and_foreign_xml(tmp_path: Path) -> None:
    path = write_eof(tmp_path, "AUX_RESORB", "A", CREATED, START, STOP, osv_count=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert refusal(path).code == "unreadable-header"
    path.write_text("<html><body>not an orbit</body></html>")
    assert refusal(path).code == "unreadable-header"
    path.write_bytes(b"")
    assert refusal(path).code == "unreadable-header"


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_tricks_in_a_header_are_refused(tmp_path: Path, document: str) -> None:
    path = tmp_path / "S1A_OPER_AUX_RESORB_OPOD_20210101T121425_V20201231T225942_20210101T025942.EOF"
    path.write_text(document.format(root="Earth_Explorer_File"))
    error = refusal(path)
    assert error.code == "unreadable-header"
    assert "ntit" in error.detail  # defusedxml names the forbidden entity


def test_eof_content_missing(tmp_path: Path) -> None:
    parsed = parse_name("S1A_OPER_AUX_RESORB_OPOD_20210101T121425_V20201231T225942_20210101T025942.EOF")
    with pytest.raises(MetadataError) as caught:
        extract_metadata(parsed, tmp_path / "absent.EOF")
    assert caught.value.code == "unreadable-header"


def test_calibration_safe(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=3000)
    assert metadata_of(path) == ProductMetadata(
        content_date_start=START,
        content_date_end=None,
        attributes={
            "productType": "AUX_CAL",
            "platformShortName": "SENTINEL-1",
            "platformSerialIdentifier": "A",
            "processingCenter": "SAR-MPC",
            "processorName": "S1-MPC-AUX",
            "processorVersion": "2.3",
            "instrumentShortName": "SAR",
            "processingDate": CREATED,
            "beginningDateTime": START,
        },
    )


def test_unit_independent_safe_with_stop(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_WND", None, CREATED, START, STOP, payload_bytes=5000)
    assert path.name.startswith("S1__AUX_WND_V")
    metadata = metadata_of(path)
    assert (metadata.content_date_start, metadata.content_date_end) == (START, STOP)
    assert metadata.attributes["endingDateTime"] == STOP
    assert metadata.attributes["processingCenter"] == "S1PDGS"
    assert "platformSerialIdentifier" not in metadata.attributes
    assert "timeliness" not in metadata.attributes


def test_manifest_prefixes_do_not_matter(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_INS", "B", CREATED, START, None, payload_bytes=100)
    manifest = path / "manifest.safe"
    text = manifest.read_text().replace("safe:", "sf:").replace("xmlns:safe=", "xmlns:sf=")
    manifest.write_text(text.replace("s1auxsar:", "aux:").replace("xmlns:s1auxsar=", "xmlns:aux="))
    assert metadata_of(path).attributes["platformSerialIdentifier"] == "B"


def test_facility_without_site_falls_back_to_its_name(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_PP1", "A", CREATED, START, None, payload_bytes=100)
    edit(path / "manifest.safe", ' site="SAR-MPC"', "")
    assert metadata_of(path).attributes["processingCenter"] == "Sentinel-1 Mission Performance Centre"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (">AUX_CAL</s1auxsar:auxProductType>", ">AUX_INS</s1auxsar:auxProductType>", "auxProductType"),
        ("<safe:number>A</safe:number>", "<safe:number>B</safe:number>", "platform number"),
        ("<safe:number>A</safe:number>", "", "platform number"),
        ("<safe:familyName>SENTINEL-1</safe:familyName>", "<safe:familyName>SENTINEL-2</safe:familyName>", "family"),
        ("<s1auxsar:validity>2020-12-31T22:59:42", "<s1auxsar:validity>2020-12-31T22:59:41", "validity"),
        ("<s1auxsar:generation>2021-01-01T12:14:25", "<s1auxsar:generation>2021-01-01T12:14:26", "generation"),
    ],
)
def test_manifest_disagreeing_with_the_name(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=100)
    edit(path / "manifest.safe", old, new)
    error = refusal(path)
    assert error.code == "manifest-mismatch"
    assert field in error.detail


def test_unit_independent_manifest_must_not_name_a_unit(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_TRO", None, CREATED, START, STOP, payload_bytes=100)
    edit(path / "manifest.safe", "</safe:familyName>\n", "</safe:familyName><safe:number>C</safe:number>\n")
    assert refusal(path).code == "manifest-mismatch"


def test_manifest_time_zones_are_honoured(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=100)
    edit(
        path / "manifest.safe",
        "<s1auxsar:validity>2020-12-31T22:59:42.000000",
        "<s1auxsar:validity>2021-01-01T00:59:42+02:00",
    )
    assert metadata_of(path).content_date_start == START


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("</xfdu:XFDU>", "", "unreadable-manifest"),
        ("<s1auxsar:generation>2021-01-01T12:14:25", "<s1auxsar:generation>yesterday", "unreadable-manifest"),
        ('<safe:software name="S1-MPC-AUX" version="2.3"/>', "", "incomplete-manifest"),
        (' version="2.3"/>', "/>", "incomplete-manifest"),
        (' abbreviation="SAR"', "", "incomplete-manifest"),
        ("<s1auxsar:auxProductType>AUX_CAL</s1auxsar:auxProductType>", "", "incomplete-manifest"),
        (
            "<s1auxsar:validity>2020-12-31T22:59:42.000000</s1auxsar:validity>",
            "<s1auxsar:validity> </s1auxsar:validity>",
            "incomplete-manifest",
        ),
    ],
)
def test_broken_manifests(tmp_path: Path, old: str, new: str, code: str) -> None:
    path = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=100)
    edit(path / "manifest.safe", old, new)
    assert refusal(path).code == code


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_tricks_in_a_manifest_are_refused(tmp_path: Path, document: str) -> None:
    path = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=100)
    (path / "manifest.safe").write_text(document.format(root="XFDU"))
    assert refusal(path).code == "unreadable-manifest"


def test_missing_manifest(tmp_path: Path) -> None:
    path = write_safe(tmp_path, "AUX_CAL", "A", CREATED, START, None, payload_bytes=100)
    (path / "manifest.safe").unlink()
    assert refusal(path).code == "missing-manifest"
    shutil.rmtree(path)
    path.write_bytes(b"a file where the SAFE directory should be")
    assert refusal(path).code == "missing-manifest"

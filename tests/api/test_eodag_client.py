"""eodag 4.x (an independent, widely used client) searches and downloads from the live AUXIP.

The provider is declared the way an operator would declare a new OData v4 AUXIP in eodag, in a YAML written to a
temporary providers directory (`EODAGSettings.providers_cfg_dir`, i.e. `EODAG_PROVIDERS_CFG_DIR`) and credentials in the
user config (`cfg_file`, i.e. `EODAG_CFG_FILE`). Only this provider is loaded (the bundled ones are not in that
directory) and the external collections list is a local empty file, so eodag makes no call outside loopback.

Provider configuration, and why each part is there:
- search `ODataV4Search` on `<root>/Products`; `need_auth: true` so the Basic credentials go with every search.
  No `dont_quote`: with it eodag 4.10 sends searches through urllib and drops the auth (401), a client limitation.
- pagination by `$top`/`$skip` (`next_page_token_key: skip`, eodag counts the pages itself), `$count=true` available;
- `$filter` built by `free_text_search_operations`: productType and platformSerialIdentifier as StringAttribute
  lambdas, the validity window as `ContentDate/Start lt <end> and ContentDate/End gt <start>`;
- `metadata_pre_mapping` turns `Attributes` (a list of {Name, Value}) into a dict, so `$.Attributes.productType`
  resolves; `file:checksum` and `file:size` come from the MD5 Checksum and ContentLength;
- download `HTTPDownload` of `Products(<Id>)/$value` without extraction, auth `GenericAuth` with `method: basic`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

eodag = pytest.importorskip("eodag")

PROVIDER = "auxip_local"

PROVIDER_YAML = """
auxip_local:
  priority: 1
  description: AUXIP under test (loopback)
  roles: [host]
  url: '{root}/'
  search:
    type: ODataV4Search
    api_endpoint: '{root}/Products'
    need_auth: true
    timeout: 30
    pagination:
      next_page_url_tpl: '{{url}}?{{search}}&$top={{limit}}&$skip={{skip}}&$expand=Attributes'
      next_page_token_key: skip
      parse_url_key: $skip
      count_tpl: '&$count=true'
      total_items_nb_key_path: '$."@odata.count"'
      max_limit: 1000
    sort:
      sort_by_default:
        - [published, ASC]
      sort_by_tpl: '&$orderby={{sort_param}} {{sort_order}}'
      sort_param_mapping:
        start_datetime: ContentDate/Start
        published: PublicationDate
      sort_order_mapping: {{ascending: asc, descending: desc}}
      max_sort_params: 1
    results_entry: value
    free_text_search_operations:
      $filter:
        union: ' or '
        wrapper: '{{}}'
        operations:
          and:
            # YAML folds a line break inside a double-quoted scalar into one space.
            - "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and
              att/OData.CSC.StringAttribute/Value eq '{{product:type}}')"
            - "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'platformSerialIdentifier' and
              att/OData.CSC.StringAttribute/Value eq '{{platform}}')"
            - "ContentDate/Start lt {{end_datetime#to_iso_utc_datetime}}"
            - "ContentDate/End gt {{start_datetime#to_iso_utc_datetime}}"
    per_product_metadata_query: false
    metadata_pre_mapping:
      metadata_path: '$.Attributes'
      metadata_path_id: 'Name'
      metadata_path_value: 'Value'
    metadata_mapping:
      uid: '$.Id'
      product:type: [null, '$.Attributes.productType']
      platform: [null, '$.Attributes.platformSerialIdentifier']
      constellation: '$.Attributes.platformShortName'
      # eodag makes a directory named after `id` next to the file: it must differ from the file name.
      id: '{{$.Name#remove_extension}}'
      title: '$.Name'
      published: '$.PublicationDate'
      start_datetime: [null, '$.ContentDate.Start']
      end_datetime: [null, '$.ContentDate.End']
      file:size: '$.ContentLength'
      file:checksum: '$.Checksum[?Algorithm="MD5"].Value'
      type: '$.ContentType'
      geometry: 'POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))'
      eodag:download_link: '{root}/Products({{uid}})/$value'
      order:status: 'succeeded'
  download:
    type: HTTPDownload
    extract: false
    archive_depth: 1
  auth:
    type: GenericAuth
    method: basic
    matching_url: '{root}'
  products:
    GENERIC_COLLECTION:
      product:type: '{{collection}}'
"""


@pytest.fixture(scope="module")
def dag(sqlite_catalog, tmp_path_factory: pytest.TempPathFactory):
    from eodag import EODataAccessGateway
    from eodag.config import EODAGSettings

    root = tmp_path_factory.mktemp("eodag")
    providers = root / "providers"
    providers.mkdir()
    (providers / "auxip.yml").write_text(PROVIDER_YAML.format(root=sqlite_catalog.server.service_root))
    username, password = sqlite_catalog.http.auth
    (root / "eodag.yml").write_text(
        f"{PROVIDER}:\n  auth:\n    credentials:\n      username: {username}\n      password: {password}\n"
    )
    (root / "ext_collections.json").write_text("{}")
    settings = EODAGSettings(
        cfg_dir=root / "cfg",
        cfg_file=root / "eodag.yml",
        providers_cfg_dir=providers,
        ext_collections_cfg_uri=str(root / "ext_collections.json"),
    )
    gateway = EODataAccessGateway(settings=settings)
    assert list(gateway.providers) == [PROVIDER]
    return gateway


def test_eodag_version_is_4x() -> None:
    assert eodag.__version__.startswith("4.")


def test_search_by_product_type_returns_exactly_the_published_ones(dag, sqlite_catalog) -> None:
    results = dag.search_all(collection="AUX_POEORB", provider=PROVIDER, limit=2)  # 2 per page: eodag pages itself
    expected = [p.name for p in sqlite_catalog.fixed if p.record.attributes["productType"] == "AUX_POEORB"]
    assert [r.properties["title"] for r in results] == expected
    assert {r.properties["uid"] for r in results} == {str(p.id) for p in sqlite_catalog.fixed if p.name in expected}


def test_search_by_product_type_and_validity_window(dag, sqlite_catalog) -> None:
    start, end = datetime(2021, 3, 2, 12, tzinfo=UTC), datetime(2021, 3, 3, tzinfo=UTC)
    results = dag.search_all(
        collection="AUX_POEORB", provider=PROVIDER, start="2021-03-02T12:00:00Z", end="2021-03-03T00:00:00Z"
    )
    expected = sorted(
        p.name
        for p in sqlite_catalog.fixed
        if p.record.attributes["productType"] == "AUX_POEORB"
        and p.record.content_date_start < end
        and p.record.content_date_end > start
    )
    assert expected == [  # the S1A one ended at 2021-03-02T00:59:42, before the window
        "S1B_OPER_AUX_POEORB_OPOD_20210302T120000_V20210301T225942_20210303T005942.EOF.zip",
        "S1C_OPER_AUX_POEORB_OPOD_20210303T120000_V20210302T225942_20210304T005942.EOF.zip",
    ]
    assert sorted(r.properties["title"] for r in results) == expected


def test_search_with_platform_narrows_further(dag, sqlite_catalog) -> None:
    results = dag.search_all(collection="AUX_RESORB", provider=PROVIDER, platform="B")
    assert [r.properties["title"] for r in results] == [
        "S1B_OPER_AUX_RESORB_OPOD_20210302T040000_V20210302T010000_20210302T040000.EOF.zip"
    ]


def test_download_one_product_and_verify_size_and_md5(dag, sqlite_catalog, tmp_path: Path) -> None:
    (result,) = dag.search_all(collection="AUX_RESORB", provider=PROVIDER, platform="A")
    published = sqlite_catalog.by_name(result.properties["title"])
    # eodag 4 does not verify checksums itself; a downloader compares with the catalog's MD5 and size, as we do.
    assert result.properties["file:checksum"] == published.md5
    assert result.properties["file:size"] == len(published.data)
    path = Path(dag.download(result, output_dir=str(tmp_path), extract=False))
    assert path.name == published.name
    data = path.read_bytes()
    assert len(data) == published.record.content_length
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() == published.md5
    assert data == published.data

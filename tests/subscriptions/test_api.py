"""The Subscriptions API against a real (SQLite / PostgreSQL) catalog, as ESA's suite and our clients call it."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from auxip.api.db import ENGINE
from auxip.api.errors import odata_errors
from auxip.api.subscriptions import add_subscription_routes

Client = TestClient[web.Request, web.Application]

ALICE = {"X-Test-User": "alice"}
BOB = {"X-Test-User": "bob"}
REPORTER = {"X-Test-User": "rita", "X-Test-Reporting": "1"}
SECRET = "pw-" + secrets.token_urlsafe(12)  # random: it must not be echoed anywhere
ROOT = "/odata/v1/Subscriptions"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _body(filter_param: str = "contains(Name,'_AUX_')", endpoint: str = "http://127.0.0.1:9/notify") -> dict[str, Any]:
    return {
        "@odata.context": "$metadata#Subscription/entity",
        "FilterParam": filter_param,
        "NotificationEndpoint": endpoint,
        "NotificationEpUsername": "hook-user",
        "NotificationEpPassword": SECRET,
    }


async def _create(api: Client, headers: dict[str, str] = ALICE, **kwargs: str) -> dict[str, Any]:
    response = await api.post(ROOT, json=_body(**kwargs), headers=headers)
    text = await response.text()
    assert response.status == 201, text
    assert SECRET not in text
    result: dict[str, Any] = await response.json()
    return result


async def _ids(api: Client, query: str, headers: dict[str, str] = ALICE) -> set[str]:
    response = await api.get(ROOT, params={"$filter": query} if query else None, headers=headers)
    text = await response.text()
    assert response.status == 200, text
    assert SECRET not in text
    return {item["Id"] for item in (await response.json())["value"]}


async def test_create_answers_201_with_the_entity_and_never_the_password(api: Client) -> None:
    created = await _create(api)
    assert created["@odata.context"] == "$metadata#Subscriptions/$entity"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", created["Id"])
    assert created["Status"] == "running"
    assert created["FilterParam"] == "contains(Name,'_AUX_')"
    assert TIMESTAMP.match(created["SubmissionDate"])
    assert created["NotificationEndpoint"] == "http://127.0.0.1:9/notify"
    assert created["NotificationEpUsername"] == "hook-user"
    assert created["LastNotificationDate"] is None
    assert "NotificationEpPassword" not in created


async def test_read_by_unquoted_and_quoted_key(api: Client) -> None:
    created = await _create(api)
    for path in (f"{ROOT}({created['Id']})", f"{ROOT}('{created['Id']}')", f"{ROOT}(%27{created['Id']}%27)"):
        response = await api.get(path, headers=ALICE)
        text = await response.text()
        assert response.status == 200, (path, text)
        assert SECRET not in text
        body = await response.json()
        assert body["Id"] == created["Id"]
        assert body["@odata.context"] == "$metadata#Subscriptions/$entity"


async def test_unknown_and_malformed_keys(api: Client) -> None:
    response = await api.get(f"{ROOT}(00000000-0000-0000-0000-000000000000)", headers=ALICE)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "NotFound"
    response = await api.get(f"{ROOT}('nope')", headers=ALICE)
    assert response.status == 400
    assert "error" in await response.json()


async def test_filters_by_each_property_give_exact_result_sets(api: Client) -> None:
    aux = await _create(api, filter_param="contains(Name,'_AUX_')", endpoint="http://hooks.example/a")
    wnd = await _create(api, filter_param="startswith(Name,'S1A_AUX_WND')", endpoint="http://hooks.example/b")
    orb = await _create(api, filter_param="contains(Name,'POEORB')", endpoint="http://hooks.example/a")
    pause = await api.post(f"{ROOT}({orb['Id']})/OData.CSC.Pause", headers=ALICE)
    assert pause.status == 200

    assert await _ids(api, "") == {aux["Id"], wnd["Id"], orb["Id"]}
    # What the suite derives from the params' FilterParam: Name replaced by FilterParam.
    assert await _ids(api, "contains(FilterParam,'_AUX_')") == {aux["Id"], wnd["Id"]}
    assert await _ids(api, "FilterParam eq 'contains(Name,''POEORB'')'") == {orb["Id"]}
    assert await _ids(api, "NotificationEndpoint eq 'http://hooks.example/a'") == {aux["Id"], orb["Id"]}
    assert await _ids(api, f"Id eq {wnd['Id']}") == {wnd["Id"]}
    assert await _ids(api, f"SubmissionDate ge {wnd['SubmissionDate']}") == {wnd["Id"], orb["Id"]}
    assert await _ids(api, f"SubmissionDate lt {wnd['SubmissionDate']}") == {aux["Id"]}
    assert await _ids(api, f"SubmissionDate eq {aux['SubmissionDate']}") == {aux["Id"]}
    assert await _ids(api, "LastNotificationDate eq null") == {aux["Id"], wnd["Id"], orb["Id"]}


async def test_filter_by_status_enum_literal(api: Client) -> None:
    running = await _create(api, endpoint="http://hooks.example/a")
    paused = await _create(api, endpoint="http://hooks.example/a")
    other = await _create(api, endpoint="http://hooks.example/b")
    assert (await api.post(f"{ROOT}({paused['Id']})/OData.CSC.Pause", headers=ALICE)).status == 200
    status = "Status eq OData.CSC.SubscriptionStatus"
    assert await _ids(api, f"{status}'running'") == {running["Id"], other["Id"]}
    assert await _ids(api, f"{status}'paused'") == {paused["Id"]}
    assert await _ids(api, f"{status}'cancelled'") == set()
    assert await _ids(api, f"{status}'running' and NotificationEndpoint eq 'http://hooks.example/a'") == {running["Id"]}


async def test_paging_ordering_and_count(api: Client) -> None:
    created = [await _create(api, endpoint=f"http://hooks.example/{i}") for i in range(5)]
    response = await api.get(
        ROOT, params={"$orderby": "SubmissionDate desc", "$top": "2", "$skip": "1", "$count": "true"}, headers=ALICE
    )
    assert response.status == 200
    body = await response.json()
    assert body["@odata.context"] == "$metadata#Subscriptions"
    assert body["@odata.count"] == 5
    assert [item["Id"] for item in body["value"]] == [created[3]["Id"], created[2]["Id"]]
    response = await api.get(ROOT, params={"$orderby": "NotificationEndpoint asc"}, headers=ALICE)
    assert [item["NotificationEndpoint"] for item in (await response.json())["value"]] == [
        f"http://hooks.example/{i}" for i in range(5)
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "Status eq OData.CSC.SubscriptionStatus'sleeping'"},
        {"$filter": "Colour eq 'red'"},
        {"$filter": "SubmissionDate ge 'yesterday'"},
        {"$filter": "contains(FilterParam,"},
        {"$orderby": "Password desc"},
        {"$top": "ten"},
        {"$top": "-1"},
        {"$skip": "x"},
        {"$count": "maybe"},
        {"$expand": "Everything"},
    ],
)
async def test_bad_query_options_answer_400(api: Client, params: dict[str, str]) -> None:
    response = await api.get(ROOT, params=params, headers=ALICE)
    assert response.status == 400
    body = await response.json()
    assert set(body["error"]) == {"code", "message"}


async def test_select_returns_only_the_selected_properties(api: Client) -> None:
    created = await _create(api)
    response = await api.get(ROOT, params={"$select": "Status,SubmissionDate"}, headers=ALICE)
    assert response.status == 200
    assert (await response.json())["value"] == [
        {"Id": created["Id"], "Status": "running", "SubmissionDate": created["SubmissionDate"]}
    ]


async def test_pause_resume_cancel_and_cancel_is_final(api: Client) -> None:
    created = await _create(api)
    base = f"{ROOT}({created['Id']})"

    async def act(action: str) -> tuple[int, dict[str, Any]]:
        response = await api.post(f"{base}/OData.CSC.{action}", headers=ALICE)
        text = await response.text()
        assert SECRET not in text
        return response.status, await response.json()

    assert await act("Pause") == (200, {**created, "Status": "paused"})
    status, body = await act("Resume")
    assert (status, body["Status"]) == (200, "running")
    status, body = await act("Cancel")
    assert (status, body["Status"]) == (200, "cancelled")
    status, body = await act("Resume")
    assert status == 400
    assert body["error"]["code"] == "InvalidStatus"
    status, body = await act("Pause")
    assert status == 400
    response = await api.get(f"{base}", headers=ALICE)
    assert (await response.json())["Status"] == "cancelled"
    response = await api.post(f"{base}/OData.CSC.Explode", headers=ALICE)
    assert response.status == 404


async def test_ownership(api: Client) -> None:
    alices = await _create(api, headers=ALICE)
    bobs = await _create(api, headers=BOB)
    assert await _ids(api, "", ALICE) == {alices["Id"]}
    assert await _ids(api, "", BOB) == {bobs["Id"]}
    assert await _ids(api, "", REPORTER) == {alices["Id"], bobs["Id"]}
    # Someone else's subscription does not exist, as far as a Download user can tell.
    assert (await api.get(f"{ROOT}({bobs['Id']})", headers=ALICE)).status == 404
    assert (await api.post(f"{ROOT}({bobs['Id']})/OData.CSC.Cancel", headers=ALICE)).status == 404
    assert (await api.get(f"{ROOT}({bobs['Id']})", headers=BOB)).status == 200
    assert (await api.get(f"{ROOT}({bobs['Id']})", headers=REPORTER)).status == 200
    assert (await api.post(f"{ROOT}({bobs['Id']})/OData.CSC.Pause", headers=REPORTER)).status == 200
    assert (await api.get(ROOT)).status == 401


@pytest.mark.parametrize(
    "filter_param",
    ["", "contains(Name,", "Colour eq 'red'", "Name eq", "PublicationDate gt 'soon'", "Name eq 'a' or"],
)
async def test_bad_filter_param_answers_400(api: Client, filter_param: str) -> None:
    response = await api.post(ROOT, json=_body(filter_param=filter_param), headers=ALICE)
    assert response.status == 400
    assert set((await response.json())["error"]) == {"code", "message"}
    assert await _ids(api, "") == set()


@pytest.mark.parametrize(
    "endpoint", ["", "ftp://hooks.example/x", "hooks.example/x", "http://", "javascript:alert(1)", 42, None]
)
async def test_bad_notification_endpoint_answers_400(api: Client, endpoint: object) -> None:
    body = _body()
    body["NotificationEndpoint"] = endpoint
    response = await api.post(ROOT, json=body, headers=ALICE)
    assert response.status == 400
    assert "error" in await response.json()


async def test_username_with_a_colon_answers_400(api: Client) -> None:
    body = _body()
    body["NotificationEpUsername"] = "user:name"
    response = await api.post(ROOT, json=body, headers=ALICE)
    assert response.status == 400


async def test_malformed_bodies_answer_400(api: Client) -> None:
    response = await api.post(ROOT, data=b"{not json", headers=ALICE)
    assert response.status == 400
    response = await api.post(ROOT, json=["FilterParam"], headers=ALICE)
    assert response.status == 400


async def test_query_string_form_of_filter_param_is_accepted(api: Client) -> None:
    created = await _create(api, filter_param="Products?$filter=contains(Name,'_AUX_')")
    assert created["FilterParam"] == "Products?$filter=contains(Name,'_AUX_')"


async def test_default_resolver_refuses_with_401(engine: Any, aiohttp_client: Any) -> None:
    app = web.Application(middlewares=[odata_errors])
    app[ENGINE] = engine
    add_subscription_routes(app)
    client = await aiohttp_client(app)
    response = await client.get(ROOT)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert (await response.json())["error"]["code"] == "Unauthorized"

"""GET|DELETE /v1/responses/{id} and GET /v1/responses/{id}/input_items through a running
gateway (SPEC §9.2), with rows written into its database as the Responses door writes them."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from lunos.gateway.app import create_app
from lunos.gateway.config import Settings
from lunos.gateway.store import Store, StoredResponse
from tests.gateway_process import MASTER_KEY

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def response_object(response_id: str, text: str = "Paris.") -> dict:
    """A response as the door returns it (the fields the openai SDK reads)."""
    return {"id": response_id, "object": "response", "created_at": 1_760_000_000,
            "status": "completed", "model": "openai/gpt-4o", "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0,
            "tool_choice": "auto", "tools": [], "previous_response_id": None,
            "output": [{"id": f"msg_{response_id}", "type": "message", "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}, "cost": 0.00004}}


def input_items(n: int) -> list[dict]:
    return [{"id": f"msg_in_{i:02d}", "type": "message", "role": "user",
             "content": [{"type": "input_text", "text": f"item {i}"}]} for i in range(1, n + 1)]


class Site:
    """The running gateway, two keys of its own, and its database."""

    def __init__(self, gateway) -> None:
        self.url = gateway.url
        self.db = f"sqlite:///{gateway.home / 'lunos.db'}"
        self.keys = {}
        for name in ("alice", "bob"):
            r = httpx.post(f"{self.url}/admin/keys", headers=MASTER, json={"name": name}, timeout=10)
            assert r.status_code == 201, r.text
            self.keys[name] = (r.json()["id"], {"authorization": f"Bearer {r.json()['key']}"})

    def store(self, response_id: str, owner: str, items: list[dict] | None = None,
              created_at: float | None = None) -> dict:
        key_id = self.keys[owner][0] if owner in self.keys else owner
        response = response_object(response_id)

        async def save() -> None:
            store = Store.open(self.db)
            try:
                await store.save_response(StoredResponse(
                    response_id, key_id, created_at or time.time(), "openai/gpt-4o", None,
                    input_items(3) if items is None else items, response))
            finally:
                await store.close()
        asyncio.run(save())
        return response

    def get(self, path: str, who: str, **params) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers(who), params=params, timeout=10)

    def delete(self, path: str, who: str) -> httpx.Response:
        return httpx.delete(self.url + path, headers=self.headers(who), timeout=10)

    def headers(self, who: str) -> dict:
        return MASTER if who == "master" else self.keys[who][1]

    def sdk(self, who: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", max_retries=0,
                             api_key=self.headers(who)["authorization"].split()[1])


@pytest.fixture(scope="module")
def site(gateway):
    return Site(gateway)


def assert_not_found(r: httpx.Response, response_id: str) -> None:
    assert r.status_code == 404, r.text
    assert r.json() == {"error": {"message": f"Response with id '{response_id}' not found.",
                                  "type": "invalid_request_error", "param": None,
                                  "code": "response_not_found"}}


def test_the_owner_retrieves_the_response_as_it_was_returned(site):
    stored = site.store("resp_e2e_get", "alice")
    r = site.get("/v1/responses/resp_e2e_get", "alice")
    assert r.status_code == 200 and r.json() == stored
    assert r.headers["x-request-id"]


def test_another_key_and_the_master_key_get_404_as_for_a_missing_one(site):
    site.store("resp_e2e_private", "alice")
    for who in ("bob", "master"):
        assert_not_found(site.get("/v1/responses/resp_e2e_private", who), "resp_e2e_private")
        assert_not_found(site.get("/v1/responses/resp_e2e_private/input_items", who), "resp_e2e_private")
        assert_not_found(site.delete("/v1/responses/resp_e2e_private", who), "resp_e2e_private")
    assert_not_found(site.get("/v1/responses/resp_nowhere", "alice"), "resp_nowhere")
    assert site.get("/v1/responses/resp_e2e_private", "alice").status_code == 200


def test_the_master_key_reads_its_own(site):
    site.store("resp_e2e_master", "master")
    assert site.get("/v1/responses/resp_e2e_master", "master").json()["id"] == "resp_e2e_master"
    assert_not_found(site.get("/v1/responses/resp_e2e_master", "alice"), "resp_e2e_master")


def test_no_key_is_401(site):
    site.store("resp_e2e_nokey", "alice")
    for r in (httpx.get(f"{site.url}/v1/responses/resp_e2e_nokey", timeout=10),
              httpx.delete(f"{site.url}/v1/responses/resp_e2e_nokey", timeout=10),
              httpx.get(f"{site.url}/v1/responses/resp_e2e_nokey/input_items", timeout=10)):
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"


def test_delete_then_retrieve_is_404(site):
    site.store("resp_e2e_del", "alice")
    r = site.delete("/v1/responses/resp_e2e_del", "alice")
    assert r.status_code == 200
    assert r.json() == {"id": "resp_e2e_del", "object": "response.deleted", "deleted": True}
    assert_not_found(site.get("/v1/responses/resp_e2e_del", "alice"), "resp_e2e_del")
    assert_not_found(site.get("/v1/responses/resp_e2e_del/input_items", "alice"), "resp_e2e_del")
    assert_not_found(site.delete("/v1/responses/resp_e2e_del", "alice"), "resp_e2e_del")


def test_input_items_come_in_pages_newest_first_by_default(site):
    items = input_items(25)
    site.store("resp_e2e_items", "alice", items)
    path = "/v1/responses/resp_e2e_items/input_items"
    first = site.get(path, "alice").json()
    assert first["object"] == "list" and first["has_more"] is True
    assert first["data"] == items[::-1][:20]
    assert (first["first_id"], first["last_id"]) == ("msg_in_25", "msg_in_06")
    rest = site.get(path, "alice", after=first["last_id"]).json()
    assert rest == {"object": "list", "data": items[:5][::-1], "first_id": "msg_in_05",
                    "last_id": "msg_in_01", "has_more": False}
    asc = site.get(path, "alice", order="asc", limit="10", after="msg_in_10").json()
    assert [i["id"] for i in asc["data"]] == [f"msg_in_{i}" for i in range(11, 21)]
    assert asc["has_more"] is True
    whole = site.get(path, "alice", order="asc", limit="100", include="message.input_image.image_url").json()
    assert whole["data"] == items and whole["has_more"] is False
    end = site.get(path, "alice", order="asc", after="msg_in_25").json()
    assert end == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_a_response_without_input_items_lists_none(site):
    site.store("resp_e2e_noitems", "alice", [])
    r = site.get("/v1/responses/resp_e2e_noitems/input_items", "alice")
    assert r.json() == {"object": "list", "data": [], "first_id": None, "last_id": None,
                        "has_more": False}


@pytest.fixture(scope="module")
def alices_response(site) -> str:
    site.store("resp_e2e_bad", "alice")
    return "resp_e2e_bad"


@pytest.mark.parametrize(("param", "value"), [
    ("limit", "0"), ("limit", "101"), ("limit", "ten"), ("limit", "-1"), ("limit", "1.5"),
    ("order", "up"), ("order", "ASC"), ("after", "msg_nowhere"), ("after", "msg\x00"),
])
def test_bad_query_values_are_400_naming_the_parameter(site, alices_response, param, value):
    r = site.get(f"/v1/responses/{alices_response}/input_items", "alice", **{param: value})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert param in error["message"]


def test_a_bad_query_value_is_400_even_for_a_missing_response(site):
    r = site.get("/v1/responses/resp_nowhere/input_items", "alice", order="sideways")
    assert r.status_code == 400 and r.json()["error"]["param"] == "order"


def test_retrieve_does_not_stream(site):
    site.store("resp_e2e_stream", "alice")
    assert site.get("/v1/responses/resp_e2e_stream", "alice", stream="false").status_code == 200
    r = site.get("/v1/responses/resp_e2e_stream", "alice", stream="true")
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream"


def test_paths_that_name_no_response(site):
    assert_not_found(site.get("/v1/responses/a%2Fb", "alice"), "a/b")
    assert_not_found(site.get("/v1/responses/a/b/input_items", "alice"), "a/b")
    assert_not_found(site.get("/v1/responses/resp_x/input_items/", "alice"), "resp_x/input_items/")
    assert_not_found(site.delete("/v1/responses/resp_x/input_items", "alice"), "resp_x/input_items")
    r = httpx.put(f"{site.url}/v1/responses/resp_x", headers=MASTER, timeout=10)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_the_openai_sdk_retrieves_lists_and_deletes(site):
    site.store("resp_e2e_sdk", "alice", input_items(4))
    client = site.sdk("alice")
    response = client.responses.retrieve("resp_e2e_sdk")
    assert response.id == "resp_e2e_sdk" and response.output_text == "Paris."
    page = client.responses.input_items.list("resp_e2e_sdk", order="asc", limit=3)
    assert [item.id for item in page.data] == ["msg_in_01", "msg_in_02", "msg_in_03"]
    assert page.has_more is True
    assert [item.id for item in client.responses.input_items.list("resp_e2e_sdk", order="asc", limit=3)] == [
        "msg_in_01", "msg_in_02", "msg_in_03", "msg_in_04"]  # the SDK follows `after` itself
    with pytest.raises(openai.NotFoundError):
        site.sdk("bob").responses.retrieve("resp_e2e_sdk")
    with pytest.raises(openai.NotFoundError):
        site.sdk("bob").responses.delete("resp_e2e_sdk")
    client.responses.delete("resp_e2e_sdk")
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("resp_e2e_sdk")
    assert caught.value.body["message"] == "Response with id 'resp_e2e_sdk' not found."


async def test_stored_responses_follow_trace_retention(tmp_path):
    """The hourly purge's first round, at start-up, deletes the responses older than
    `trace_retention_days` and keeps the rest."""
    settings = Settings(home=tmp_path, master_key="sk-lunos-retention-test-master", trace_retention_days=30)
    store = Store.open(settings.db_url())
    await store.migrate()
    old = StoredResponse("resp_old", "master", time.time() - 31 * 86400, "m", None, [], {"id": "resp_old"})
    new = StoredResponse("resp_new", "master", time.time() - 29 * 86400, "m", None, [], {"id": "resp_new"})
    for row in (old, new):
        await store.save_response(row)
    app = create_app(settings)
    await app.startup()
    try:
        deadline = time.monotonic() + 10
        while await store.get_response("resp_old", "master") is not None:
            assert time.monotonic() < deadline, "the purge did not run"
            await asyncio.sleep(0.02)
        assert await store.get_response("resp_new", "master") == new
    finally:
        await app.shutdown()
        await store.close()

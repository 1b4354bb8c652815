"""The dashboard's pages, in process: access control, cookies, CSRF, headers, filters."""

from __future__ import annotations

import re
import time

import orjson
import pytest

from lunos.gateway import dashboard
from lunos.gateway.dashboard.session import COOKIE
from lunos.gateway.errors import GatewayError
from lunos.gateway.records import Attempt
from tests.gateway.dashboard.conftest import HOST, MASTER, csrf_of

PAGES = ["/dashboard", "/dashboard/", "/dashboard/logs", "/dashboard/logs/chatcmpl-x",
         "/dashboard/usage", "/dashboard/keys"]


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


async def test_strangers_are_sent_to_sign_in_and_never_get_a_shell(site):
    async with site.client() as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/dashboard/login"
            assert response.content == b""
        for path in ("/dashboard/keys", "/dashboard/logout", "/dashboard/keys/key_x/revoke"):
            response = await client.post(path, data={"name": "x"})
            assert response.status_code == 303 and response.content == b""
        client.cookies.set(COOKIE, "forged.value", domain=HOST, path="/dashboard")
        assert (await client.get("/dashboard/logs")).status_code == 303


async def test_every_response_carries_the_security_headers(site):
    async with site.client() as client:
        responses = [await client.get("/dashboard/login"), await client.get("/dashboard/logs"),
                     await client.get("/dashboard/static/dashboard.css"),
                     await client.get("/dashboard/static/missing.js")]
        await site.sign_in(client, MASTER)
        responses += [await client.get(p) for p in ("/dashboard/logs", "/dashboard/usage",
                                                   "/dashboard/keys", "/dashboard/nope")]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self';" in csp and "style-src 'self';" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "img-src 'self' data: https:" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert [r.status_code for r in responses[-4:]] == [200, 200, 200, 404]
    assert responses[-1].headers["cache-control"] == "no-store"


async def test_sign_in_sets_a_hardened_session_cookie(site):
    async with site.client() as client:
        response = await site.sign_in(client, MASTER)
        assert response.headers["location"] == "/dashboard/logs"
        cookie = next(c for c in response.headers.get_list("set-cookie")
                      if c.startswith(COOKIE + "="))
        attrs = cookie.split("; ")
        assert {"HttpOnly", "SameSite=Lax", "Path=/dashboard"} <= set(attrs)
        assert "Secure" not in attrs
        assert MASTER not in cookie
        page = await client.get("/dashboard/logs")
        assert page.status_code == 200 and "Sign out" in page.text
        # signed in already: the sign-in page forwards to Logs
        assert (await client.get("/dashboard/login")).headers["location"] == "/dashboard/logs"
    async with site.client("https") as client:
        response = await site.sign_in(client, MASTER)
        cookie = next(c for c in response.headers.get_list("set-cookie")
                      if c.startswith(COOKIE + "="))
        assert "Secure" in cookie.split("; ")


async def test_a_wrong_key_is_refused(site):
    async with site.client() as client:
        page = await client.get("/dashboard/login")
        response = await client.post("/dashboard/login",
                                     data={"csrf": csrf_of(page.text), "key": "sk-lunos-wrong"})
        assert response.status_code == 401
        assert "Invalid API key" in response.text
        assert not any(c.startswith(COOKIE + "=")
                       for c in response.headers.get_list("set-cookie"))
        assert (await client.get("/dashboard/logs")).status_code == 303


async def test_sign_in_needs_the_form_token(site):
    async with site.client() as client:
        await client.get("/dashboard/login")
        response = await client.post("/dashboard/login", data={"key": MASTER})
        assert response.status_code == 403
        assert (await client.get("/dashboard/logs")).status_code == 303
        response = await client.post("/dashboard/login", data={"key": MASTER, "csrf": "0" * 64})
        assert response.status_code == 403


async def test_cross_origin_and_tokenless_posts_are_refused(site):
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        token = csrf_of((await client.get("/dashboard/keys")).text)
        before = len(await site.gw.store.list_keys())
        evil = await client.post("/dashboard/keys", data={"csrf": token, "name": "evil-origin"},
                                 headers={"origin": "http://evil.example"})
        assert evil.status_code == 403
        evil = await client.post("/dashboard/keys", data={"csrf": token, "name": "evil-referer"},
                                 headers={"referer": "http://evil.example/page"})
        assert evil.status_code == 403
        tokenless = await client.post("/dashboard/keys", data={"name": "no-token"},
                                      headers={"origin": f"http://{HOST}"})
        assert tokenless.status_code == 403
        assert "security token" in tokenless.text
        wrong = await client.post("/dashboard/keys", data={"name": "wrong", "csrf": "f" * 64})
        assert wrong.status_code == 403
        assert len(await site.gw.store.list_keys()) == before
        ok = await client.post("/dashboard/keys", data={"csrf": token, "name": "good"},
                               headers={"origin": f"http://{HOST}"})
        assert ok.status_code == 303  # post/redirect/get
        assert len(await site.gw.store.list_keys()) == before + 1
        # a sign-out without the token is refused too, and the session stays
        assert (await client.post("/dashboard/logout")).status_code == 403
        assert (await client.get("/dashboard/logs")).status_code == 200


async def test_a_token_from_another_session_is_refused(site):
    async with site.client() as first, site.client() as second:
        await site.sign_in(first, MASTER)
        await site.sign_in(second, MASTER)
        token_of_first = csrf_of((await first.get("/dashboard/keys")).text)
        response = await second.post("/dashboard/keys",
                                     data={"csrf": token_of_first, "name": "replayed"})
        assert response.status_code == 403


async def test_a_key_sees_only_its_own_rows(site):
    key_a, raw_a = await site.new_key("key-a")
    key_b, _ = await site.new_key("key-b")
    trace = {"messages": [{"role": "user", "content": "secret of B"}], "params": {}}
    await site.add_row("chatcmpl-owned-by-a", key_a["id"], trace=True,
                       request={"messages": [{"role": "user", "content": "hello from A"}]},
                       response={"content": "answer to A"})
    await site.add_row("chatcmpl-owned-by-b", key_b["id"], trace=True, request=trace,
                       response={"content": "answer to B"})
    async with site.client() as a, site.client() as master:
        await site.sign_in(a, raw_a)
        listed = row_ids((await a.get("/dashboard/logs")).text)
        assert "chatcmpl-owned-by-a" in listed and "chatcmpl-owned-by-b" not in listed
        # the master's `key` filter is ignored for other keys
        other = row_ids((await a.get(f"/dashboard/logs?key={key_b['id']}")).text)
        assert "chatcmpl-owned-by-b" not in other
        own = await a.get("/dashboard/logs/chatcmpl-owned-by-a")
        assert own.status_code == 200 and "hello from A" in own.text and "answer to A" in own.text
        theirs = await a.get("/dashboard/logs/chatcmpl-owned-by-b")
        assert theirs.status_code == 404 and "secret of B" not in theirs.text
        assert "Keys" not in (await a.get("/dashboard/logs")).text.split("<main>")[0]
        await site.sign_in(master, MASTER)
        listed = row_ids((await master.get("/dashboard/logs")).text)
        assert {"chatcmpl-owned-by-a", "chatcmpl-owned-by-b"} <= set(listed)
        only_b = row_ids((await master.get(f"/dashboard/logs?key={key_b['id']}")).text)
        assert only_b == ["chatcmpl-owned-by-b"]
        assert (await master.get("/dashboard/logs/chatcmpl-owned-by-b")).status_code == 200


async def test_only_the_master_manages_keys(site):
    _, raw = await site.new_key("not-master")
    victim, _ = await site.new_key("victim")
    async with site.client() as client:
        await site.sign_in(client, raw)
        token = csrf_of((await client.get("/dashboard/logs")).text)
        assert (await client.get("/dashboard/keys")).status_code == 403
        response = await client.post("/dashboard/keys", data={"csrf": token, "name": "x"})
        assert response.status_code == 403
        response = await client.post(f"/dashboard/keys/{victim['id']}/revoke",
                                     data={"csrf": token})
        assert response.status_code == 403
    assert (await site.gw.store.get_key(victim["id"]))["revoked_at"] is None


async def test_revoking_the_key_ends_its_session(site):
    key, raw = await site.new_key("soon-revoked")
    async with site.client() as client:
        await site.sign_in(client, raw)
        assert (await client.get("/dashboard/logs")).status_code == 200
        await site.gw.store.revoke_key(key["id"])
        await site.gw.keysync.refresh()
        response = await client.get("/dashboard/logs")
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"


async def test_sign_out_clears_the_cookie(site):
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        token = csrf_of((await client.get("/dashboard/logs")).text)
        response = await client.post("/dashboard/logout", data={"csrf": token})
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
        cleared = next(c for c in response.headers.get_list("set-cookie")
                       if c.startswith(COOKIE + "="))
        assert cleared.startswith(COOKIE + "=;") and "Max-Age=0" in cleared
        assert (await client.get("/dashboard/logs")).status_code == 303


async def test_key_management(site):
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        token = csrf_of((await client.get("/dashboard/keys")).text)
        bad = await client.post("/dashboard/keys", data={"csrf": token, "name": "b",
                                                          "budget_usd": "lots"})
        assert bad.status_code == 400 and "budget_usd" in bad.text
        assert 'value="b"' in bad.text  # the form keeps what was typed
        posted = await client.post("/dashboard/keys", data={
            "csrf": token, "name": "ci-runner", "budget_usd": "5", "rpm": "60", "tpm": "",
            "allowed_models": "openai/gpt-4o-mini, openai/gpt-4o",
            "expires_at": "2099-01-01T00:00"})
        # post/redirect/get: the page the redirect leads to shows the secret once
        assert posted.status_code == 303 and posted.headers["location"] == "/dashboard/keys"
        assert "Path=/dashboard" in posted.headers["set-cookie"] and "HttpOnly" in posted.headers["set-cookie"]
        created = await client.get("/dashboard/keys")
        raw = re.search(r'id="new-key-value">([^<]+)<', created.text).group(1)
        assert raw.startswith("sk-lunos-")
        assert created.headers["cache-control"] == "no-store"
        row = next(k for k in await site.gw.store.list_keys() if k["name"] == "ci-runner")
        assert row["budget_usd"] == 5.0 and row["rpm"] == 60 and row["tpm"] is None
        assert row["allowed_models"] == ["openai/gpt-4o-mini", "openai/gpt-4o"]
        assert row["expires_at"].startswith("2099-01-01")
        listing = (await client.get("/dashboard/keys")).text
        assert raw not in listing and row["prefix"] in listing  # shown once
        assert site.gw.auth.authenticate(b"Bearer " + raw.encode()).key_id == row["id"]
        asked = await client.post(f"/dashboard/keys/{row['id']}/revoke", data={"csrf": token})
        assert asked.status_code == 200 and 'id="confirm-revoke"' in asked.text  # asks first
        assert (await site.gw.store.get_key(row["id"]))["revoked_at"] is None
        revoked = await client.post(f"/dashboard/keys/{row['id']}/revoke",
                                    data={"csrf": token, "confirm": "yes"})
        assert revoked.status_code == 303
        page = await client.get(revoked.headers["location"])
        assert f"Key {row['id']} revoked." in page.text
        assert (await site.gw.store.get_key(row["id"]))["revoked_at"] is not None
        missing = await client.post("/dashboard/keys/key_missing/revoke", data={"csrf": token})
        assert missing.status_code == 404


async def test_logs_filters_and_pagination(site):
    key, raw = await site.new_key("paging")
    base = time.time() - 3600
    for i in range(55):
        await site.add_row(f"chatcmpl-page-{i:03d}", key["id"], created_at=base + i,
                           model="openai/gpt-4o" if i % 2 else "anthropic/claude-x",
                           app_id="even" if i % 2 == 0 else "odd",
                           status=500 if i % 10 == 0 else 200)
    async with site.client() as client:
        await site.sign_in(client, raw)
        first = await client.get("/dashboard/logs")
        ids = row_ids(first.text)
        assert len(ids) == 50 and ids[0] == "chatcmpl-page-054"  # newest first
        next_url = re.search(r'href="([^"]+)" class="button" rel="next"', first.text).group(1)
        second = row_ids((await client.get(next_url.replace("&amp;", "&"))).text)
        assert second == [f"chatcmpl-page-{i:03d}" for i in range(4, -1, -1)]
        assert 'rel="next"' not in (await client.get(next_url.replace("&amp;", "&"))).text
        page_two = (await client.get(next_url.replace("&amp;", "&"))).text
        assert "51\u201355 of 55" in page_two  # and a way back
        prev_url = re.search(r'href="([^"]+)" class="button" rel="prev"', page_two).group(1)
        assert row_ids((await client.get(prev_url.replace("&amp;", "&"))).text) == ids
        assert "1\u201350 of 55" in first.text and 'rel="prev"' not in first.text
        by_model = row_ids((await client.get("/dashboard/logs?model=anthropic/claude-x")).text)
        assert len(by_model) == 28 and all(int(i[-3:]) % 2 == 0 for i in by_model)
        by_app = row_ids((await client.get("/dashboard/logs?app=odd")).text)
        assert len(by_app) == 27
        errors = row_ids((await client.get("/dashboard/logs?status=error")).text)
        assert errors == [f"chatcmpl-page-{i:03d}" for i in (50, 40, 30, 20, 10, 0)]
        window = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + 10))
        until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + 13))
        ranged = row_ids((await client.get(f"/dashboard/logs?since={window}&until={until}")).text)
        assert ranged == ["chatcmpl-page-012", "chatcmpl-page-011", "chatcmpl-page-010"]
        combined = await client.get("/dashboard/logs?app=even&status=error&model=anthropic/claude-x")
        assert len(row_ids(combined.text)) == 6
        bad = await client.get("/dashboard/logs?status=sometimes")
        assert bad.status_code == 400 and "status" in bad.text and row_ids(bad.text) == []
        bad_time = await client.get("/dashboard/logs?since=yesterday")
        assert bad_time.status_code == 400


async def test_logs_show_and_filter_the_endpoint(site):
    key, raw = await site.new_key("doors")
    await site.add_row("chatcmpl-door-chat", key["id"])
    await site.add_row("msg_door_messages", key["id"], endpoint="messages",
                       model="anthropic/claude-haiku-4-5")
    async with site.client() as client:
        await site.sign_in(client, raw)
        page = (await client.get("/dashboard/logs")).text
        cells = dict(re.findall(r'<tr data-id="([^"]+)">.*?<span class="tag">([^<]*)</span>',
                                page, re.S))
        assert cells == {"msg_door_messages": "messages", "chatcmpl-door-chat": "chat"}
        assert '<option value="messages">messages</option>' in page
        filtered = (await client.get("/dashboard/logs?endpoint=messages")).text
        assert row_ids(filtered) == ["msg_door_messages"]
        assert '<option value="messages" selected>messages</option>' in filtered
        assert row_ids((await client.get("/dashboard/logs?endpoint=chat")).text) == ["chatcmpl-door-chat"]
        detail = (await client.get("/dashboard/logs/msg_door_messages")).text
        assert '<dd id="row-endpoint">messages</dd>' in detail
        bad = await client.get("/dashboard/logs?endpoint=telepathy")
        assert bad.status_code == 400 and row_ids(bad.text) == []
        assert "&#39;endpoint&#39; must be one of chat, messages, responses" in bad.text


async def test_detail_page_shows_the_row(site):
    await site.add_row(
        "chatcmpl-detail", None, trace=True, status=200, ttft_ms=80.0, tokens_per_second=55.5,
        stream=True,
        attempts=[Attempt("openai/gpt-4o-mini", "openai", 200, None, 300.0, 2.0)],
        request={"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "lookup", "arguments": '{"q":"lunos"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "found it"}],
            "params": {"temperature": 0.3}},
        response={"content": "It is a gateway.", "finish_reason": "stop", "annotations": [
            {"type": "url_citation", "url_citation": {"url": "https://lunos.example/docs",
                                                      "title": "Lunos docs"}}]})
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        page = (await client.get("/dashboard/logs/chatcmpl-detail")).text
    for text in ("chatcmpl-detail", "openai/gpt-4o-mini", "app-a", "be brief", "what is this?",
                 "lookup", "&#34;q&#34;: &#34;lunos&#34;", "found it", "It is a gateway.",
                 "322 ms", "80 ms", "55.5", "$0.0004", "&#34;temperature&#34;: 0.3",
                 "first try", "at 2.0 ms · took 300 ms"):
        assert text in page, text
    assert '<img class="thumb" src="data:image/png;base64,iVBORw0KGgo="' in page
    assert ('<a href="https://lunos.example/docs" rel="noopener noreferrer" target="_blank">'
            'Lunos docs</a>') in page


async def test_untraced_row_says_so(site):
    await site.add_row("chatcmpl-plain", None)
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        page = await client.get("/dashboard/logs/chatcmpl-plain")
    assert page.status_code == 200 and 'id="no-trace"' in page.text


async def test_usage_page_embeds_chart_data(site):
    key, raw = await site.new_key("usage")
    for i in range(3):
        await site.add_row(f"chatcmpl-usage-{i}", key["id"], app_id="reports", cost=0.25)
    async with site.client() as client:
        await site.sign_in(client, raw)
        page = await client.get("/dashboard/usage?days=7")
    assert page.status_code == 200
    raw_json = re.search(r'<script type="application/json" id="usage-data">(.*?)</script>',
                         page.text, re.S).group(1)
    data = orjson.loads(raw_json)
    assert len(data["x"]) == 7
    requests = next(c for c in data["charts"] if c["id"] == "requests")
    assert requests["series"] == [{"label": "openai/gpt-4o-mini", "values": [0] * 6 + [3]}]
    cost = next(c for c in data["charts"] if c["id"] == "cost")
    assert cost["series"][0]["values"][-1] == 0.75
    assert 'id="total-requests">3<' in page.text
    assert re.search(r'<td data-label="App" class="mono"><a href="/dashboard/logs\?app=reports&amp;since=[^"]+">reports</a></td>', page.text)
    assert '<script src="/dashboard/static/uplot/uPlot.iife.min.js" defer>' in page.text


async def test_usage_page_shows_the_cache_hit_rate_and_savings(site):
    key, raw = await site.new_key("cached")
    await site.add_row("chatcmpl-cache-hit-1", key["id"], cache="hit", cost=0.0,
                       extra={"cache_saved_usd": 0.125})
    await site.add_row("chatcmpl-cache-hit-2", key["id"], cache="hit", cost=0.0,
                       extra={"cache_saved_usd": 0.25})
    await site.add_row("chatcmpl-cache-miss", key["id"], cache="miss", cost=0.125)
    await site.add_row("chatcmpl-cache-none", key["id"], cost=0.5)
    await site.add_row("chatcmpl-cache-other", key["id"], model="openai/gpt-4o", cost=0.5)
    async with site.client() as client:
        await site.sign_in(client, raw)
        page = (await client.get("/dashboard/usage?days=7")).text
    card = re.search(r'<div class="total" id="cache-total">(.*?)</div>', page, re.S).group(1)
    assert 'id="cache-hit-rate">66.7%<' in card
    assert "2 of 3 lookups, $0.375 saved" in card
    by_model = re.search(r'<table class="data" id="by-model">(.*?)</table>', page, re.S).group(1)
    rows = dict(re.findall(r'<a href="[^"]*">([^<]+)</a>.*?<td data-label="Cache hit rate / saved" '
                           r'class="num">([^<]*)</td>', by_model, re.S))
    assert rows == {"openai/gpt-4o-mini": "66.7% / $0.375", "openai/gpt-4o": "— / $0"}


async def test_static_files(site):
    async with site.client() as client:
        js = await client.get("/dashboard/static/uplot/uPlot.iife.min.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert "uPlot" in js.text and js.headers["cache-control"].startswith("public")
        licence = await client.get("/dashboard/static/uplot/LICENSE")
        assert licence.status_code == 200 and "MIT" in licence.text
        css = await client.get("/dashboard/static/dashboard.css")
        assert css.headers["content-type"].startswith("text/css")
        assert (await client.post("/dashboard/static/dashboard.css")).status_code == 405
    for name in ("../__init__.py", "../views.py", "/etc/passwd", "uplot/../../session.py",
                 "missing.js", ""):
        assert dashboard._static(name, "GET").status == 404, name


async def test_unknown_pages_and_methods(site):
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        assert (await client.get("/dashboard/nowhere")).status_code == 404
        assert (await client.get("/dashboard/logs/a/b")).status_code == 404
        token = csrf_of((await client.get("/dashboard/logs")).text)
        assert (await client.post("/dashboard/logs", data={"csrf": token})).status_code == 405
        assert (await client.delete("/dashboard/logs")).status_code == 405


async def test_odd_query_values_are_a_400_page_naming_the_parameter(site):
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        for query, param in [("status=%C2%B2", "status"), ("status=99999999999999999999", "status"),
                             ("since=1e999", "since"), ("until=garbage", "until"),
                             ("cursor=garbage", "cursor"), ("model=a%00b", "model"),
                             ("app=%00", "app"), ("key=%00", "key"), ("endpoint=%00", "endpoint")]:
            page = await client.get(f"/dashboard/logs?{query}")
            assert page.status_code == 400, (query, page.status_code)
            assert f"&#39;{param}&#39;" in page.text, query
        for days in ("%C2%B2", "99999999999999999999", "2", "x"):
            page = await client.get(f"/dashboard/usage?days={days}")
            assert page.status_code == 400 and "&#39;days&#39;" in page.text, days
        assert (await client.get("/dashboard/logs/chatcmpl-%00")).status_code == 404


async def test_detail_page_shows_a_messages_trace(site):
    """A traced Messages request reads back with its system prompt first and its blocks shown."""
    await site.add_row(
        "msg_detail", None, trace=True, endpoint="messages",
        request={"model": "anthropic/claude-sonnet-4-5", "max_tokens": 100,
                 "system": [{"type": "text", "text": "answer in French", "cache_control": {"type": "ephemeral"}}],
                 "messages": [{"role": "user", "content": [
                     {"type": "text", "text": "what is on this picture?"},
                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                  "data": "iVBORw0KGgo="}}]}]},
        response={"content": "Un chat.", "finish_reason": "stop"})
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        page = (await client.get("/dashboard/logs/msg_detail")).text
    assert page.index("answer in French") < page.index("what is on this picture?")
    assert '<img class="thumb" src="data:image/png;base64,iVBORw0KGgo="' in page
    assert "Un chat." in page and '<dd id="row-endpoint">messages</dd>' in page
    assert "&#34;max_tokens&#34;: 100" in page


async def test_logs_export_as_csv_and_json_lines(site):
    key, raw = await site.new_key("exports")
    await site.add_row("chatcmpl-export-1", key["id"], app_id="=HYPERLINK(1)")
    await site.add_row("chatcmpl-export-2", key["id"], model="anthropic/claude-haiku-4-5")
    async with site.client() as client:
        await site.sign_in(client, raw)
        page = (await client.get("/dashboard/logs?model=anthropic/*")).text
        assert row_ids(page) == ["chatcmpl-export-2"]
        assert 'href="/dashboard/logs.csv?model=anthropic%2F%2A"' in page
        csv_text = (await client.get("/dashboard/logs.csv")).text
        jsonl = await client.get("/dashboard/logs.jsonl?model=anthropic/*")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,created_at,endpoint,requested_model,model")
    assert len(lines) == 3 and "'=HYPERLINK(1)" in csv_text  # no formula for a spreadsheet
    rows = [orjson.loads(line) for line in jsonl.text.splitlines()]
    assert [r["id"] for r in rows] == ["chatcmpl-export-2"]
    assert jsonl.headers["content-type"] == "application/x-ndjson"


async def test_keys_are_edited_and_rotated(site):
    key, old_secret = await site.new_key("to-edit")
    async with site.client() as client:
        await site.sign_in(client, MASTER)
        page = (await client.get(f"/dashboard/keys?edit={key['id']}")).text
        assert 'id="edit-key"' in page and 'value="to-edit"' in page
        token = csrf_of(page)
        saved = await client.post(f"/dashboard/keys/{key['id']}/edit", data={
            "csrf": token, "name": "edited", "budget_usd": "3", "rpm": "7", "tpm": "",
            "allowed_models": "openai/gpt-4o-mini", "expires_at": ""})
        assert saved.status_code == 303
        row = await site.gw.store.get_key(key["id"])
        assert (row["name"], row["budget_usd"], row["rpm"], row["allowed_models"]) == (
            "edited", 3.0, 7, ["openai/gpt-4o-mini"])
        assert f"Key {key['id']} saved." in (await client.get(saved.headers["location"])).text
        bad = await client.post(f"/dashboard/keys/{key['id']}/edit", data={"csrf": token, "name": ""})
        assert bad.status_code == 400 and (await site.gw.store.get_key(key["id"]))["name"] == "edited"
        asked = await client.post(f"/dashboard/keys/{key['id']}/rotate", data={"csrf": token})
        assert 'id="confirm-rotate"' in asked.text
        assert site.gw.auth.authenticate(b"Bearer " + old_secret.encode()).key_id == key["id"]
        rotated = await client.post(f"/dashboard/keys/{key['id']}/rotate",
                                    data={"csrf": token, "confirm": "yes"})
        assert rotated.status_code == 303
        shown = (await client.get("/dashboard/keys")).text
        new_secret = re.search(r'id="new-key-value">([^<]+)<', shown).group(1)
        assert new_secret != old_secret and "edited" in shown
    assert site.gw.auth.authenticate(b"Bearer " + new_secret.encode()).key_id == key["id"]
    with pytest.raises(GatewayError):  # the old secret no longer works
        site.gw.auth.authenticate(b"Bearer " + old_secret.encode())
    assert (await site.gw.store.get_key(key["id"]))["spend_usd"] == row["spend_usd"]


async def test_usage_over_a_custom_range(site):
    key, raw = await site.new_key("ranges")
    day = time.time() - 3 * 86400
    await site.add_row("chatcmpl-range-1", key["id"], created_at=day)
    start = time.strftime("%Y-%m-%dT%H:00", time.gmtime(day - 3600))
    end = time.strftime("%Y-%m-%dT%H:00", time.gmtime(day + 5 * 3600))
    async with site.client() as client:
        await site.sign_in(client, raw)
        page = await client.get(f"/dashboard/usage?since={start}&until={end}")
        wide = await client.get(f"/dashboard/usage?since={start}")
        bad = await client.get(f"/dashboard/usage?since={end}&until={start}")
    data = orjson.loads(re.search(r'id="usage-data">(.*?)</script>', page.text, re.S).group(1))
    assert data["per"] == "hour" and len(data["x"]) == 7  # by hour over six hours
    requests = next(c for c in data["charts"] if c["id"] == "requests")
    assert sum(requests["series"][0]["values"]) == 1 and 'id="total-requests">1<' in page.text
    wide_data = orjson.loads(re.search(r'id="usage-data">(.*?)</script>', wide.text, re.S).group(1))
    assert wide_data["per"] == "day" and len(wide_data["x"]) in (4, 5)
    assert bad.status_code == 400 and "range" in bad.text


async def test_a_key_sees_its_budget_and_what_is_left(site):
    row, raw = await site.gw.store.create_key("budgeted", budget_usd=2.0)
    await site.gw.keysync.refresh()
    await site.add_row("chatcmpl-budget-1", row["id"], cost=0.5)
    async with site.client() as client:
        await site.sign_in(client, raw)
        page = (await client.get("/dashboard/usage")).text
    budget = re.search(r'<p class="notice" id="budget">(.*?)</p>', page, re.S).group(1)
    assert "$2.00" in budget and "$0.5 spent" in budget and "$1.5 left" in budget

"""The dashboard in a real headless Chromium, against the real gateway process.

Requests go through the gateway (official `openai` SDK) to the OpenAI stand-in; the browser
then finds them in Logs and Detail. Every page visited is saved as a screenshot in
tests/artifacts/dashboard/.

Needs Debian's `chromium` (/usr/bin/chromium) and Playwright for Python; Playwright's own
browser downloads are never used.
"""

from __future__ import annotations

import base64
import shutil
import struct
import time
import zlib
from pathlib import Path

import httpx
import orjson
import pytest

from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import ServerThread, send_json

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
MODEL = "openai/gpt-4o-mini"
XSS_PROMPT = "look: <img src=x onerror=alert(1)> and <script>alert(2)</script> done"
XSS_APP = "<img src=y onerror=alert(3)>"


def _playwright():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright for Python is not installed (pip install playwright)"
    if reason is None and not shutil.which(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if reason is not None:
        pytest.fail(reason + "; ./scripts/test installs both")  # a broken setup, never a skip
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-background-networking",
                                    "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def gw(standins, tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("dashboard-gateway"), standins.env()).start()
    yield process
    process.stop()


class Watch:
    """A browser page that records dialogs and CSP violations."""

    def __init__(self, context) -> None:
        self.page = context.new_page()
        self.dialogs: list[str] = []
        self.csp_errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_errors.append(message.text)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def watch(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watch(context)
    yield watched
    context.close()


def png(width: int, height: int) -> bytes:
    """A small gradient PNG, so the thumbnail is visible in the screenshots."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in (x * 5, y * 7, 160))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def chat(gw, key: str, text: str, app: str = "dashboard-e2e", **extra):
    from openai import OpenAI

    client = OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0,
                    default_headers={"X-App-ID": app})
    try:
        return client.chat.completions.create(
            model=extra.pop("model", MODEL), messages=[{"role": "user", "content": text}],
            extra_body={"observability": True}, **extra)
    finally:
        client.close()


def wait_for_log(gw, key: str, row_id: str) -> dict:
    """Rows are written in the background; wait until the API can read this one."""
    deadline = time.monotonic() + 15
    while True:
        response = httpx.get(f"{gw.url}/v1/logs/{row_id}",
                             headers={"authorization": f"Bearer {key}"})
        if response.status_code == 200:
            return response.json()
        assert time.monotonic() < deadline, f"log row {row_id} never appeared"
        time.sleep(0.1)


def admin_key(gw, name: str) -> dict:
    response = httpx.post(f"{gw.url}/admin/keys", json={"name": name},
                          headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 201, response.text
    return response.json()


def sign_in(watch: Watch, gw, key: str, shot: str | None = None) -> None:
    page = watch.page
    page.goto(gw.url + "/dashboard/logs")
    assert page.url == gw.url + "/dashboard/login"  # a stranger is sent to sign in
    page.fill("#key", key)
    if shot:
        watch.shot(shot)
    with page.expect_navigation():
        page.press("#key", "Enter")  # the form submits on Enter
    assert page.url == gw.url + "/dashboard/logs"


def row_ids(page) -> list[str]:
    return page.eval_on_selector_all("#log-table tbody tr", "rows => rows.map(r => r.dataset.id)")


def test_walkthrough(watch, gw, standins):
    page = watch.page
    sign_in(watch, gw, MASTER_KEY, shot="01-sign-in")

    # A traced request appears in Logs, with its full id.
    first = chat(gw, MASTER_KEY, "Hello dashboard")
    assert first.choices[0].message.content == "You said: Hello dashboard"
    wait_for_log(gw, MASTER_KEY, first.id)
    page.goto(gw.url + "/dashboard/logs")
    assert row_ids(page)[0] == first.id
    row = page.locator(f'tr[data-id="{first.id}"]')
    assert row.locator("td").nth(1).inner_text().startswith(first.id)
    assert MODEL in row.inner_text() and "dashboard-e2e" in row.inner_text()
    assert row.locator("td.request .tag").first.inner_text() == "chat"
    watch.shot("02-logs")

    # Its Detail has the prompt and the output.
    with page.expect_navigation():
        row.locator(f'a[href="/dashboard/logs/{first.id}"]').click()
    assert page.url == f"{gw.url}/dashboard/logs/{first.id}"
    assert page.inner_text("#row-id") == first.id
    assert "Hello dashboard" in page.inner_text("#request")
    assert page.inner_text("#output") == "You said: Hello dashboard"
    assert "openai" in page.inner_text(".facts")
    assert page.inner_text("#row-endpoint") == "chat"
    watch.shot("03-detail")

    # Filters: by app, and by status.
    other = chat(gw, MASTER_KEY, "From another app", app="billing")
    standins.openai.scripted.append(lambda rec, send: send_json(send, 400, {"error": {
        "message": "Invalid value for 'messages'.", "type": "invalid_request_error",
        "param": "messages", "code": None}}))
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as failed:
        chat(gw, MASTER_KEY, "This one fails")
    failed_id = failed.value.response.headers["x-request-id"]
    wait_for_log(gw, MASTER_KEY, other.id)
    wait_for_log(gw, MASTER_KEY, failed_id)
    page.goto(gw.url + "/dashboard/logs")
    assert {first.id, other.id, failed_id} <= set(row_ids(page))
    page.fill('#filters input[name="app"]', "billing")
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    assert "app=billing" in page.url
    assert row_ids(page) == [other.id]
    watch.shot("04-logs-filtered-by-app")
    page.fill('#filters input[name="app"]', "")
    page.select_option('#filters select[name="status"]', "error")
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    assert row_ids(page) == [failed_id]
    assert "400" in page.locator(f'tr[data-id="{failed_id}"]').inner_text()
    watch.shot("05-logs-filtered-by-status")
    page.select_option('#filters select[name="endpoint"]', "chat")
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    assert "endpoint=chat" in page.url and row_ids(page) == [failed_id]
    page.select_option('#filters select[name="endpoint"]', "messages")
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    assert row_ids(page) == [] and "No requests match." in page.inner_text("main")
    page.goto(f"{gw.url}/dashboard/logs/{failed_id}")
    assert "Invalid value for 'messages'" in page.inner_text("#row-error")

    # Usage: the charts are drawn by the vendored chart library.
    page.goto(gw.url + "/dashboard/usage?days=7")
    page.wait_for_selector("body[data-charts='4']")
    assert page.locator(".chart canvas").count() == 4
    assert int(page.inner_text("#total-requests")) >= 3
    assert MODEL in page.inner_text("#by-model") and "billing" in page.inner_text("#by-app")
    watch.shot("06-usage")

    # Keys: create one (shown once), use it, revoke it.
    with page.expect_navigation():
        page.click('nav a[href="/dashboard/keys"]')
    page.fill('#create-key input[name="name"]', "browser-made")
    page.fill('#create-key input[name="budget_usd"]', "2.5")
    page.fill('#create-key input[name="rpm"]', "30")
    with page.expect_navigation():
        page.click('#create-key button[type="submit"]')
    new_key = page.inner_text("#new-key-value")
    assert new_key.startswith("sk-lunos-")
    watch.shot("07-key-created")
    assert chat(gw, new_key, "made in the browser").choices[0].message.content
    page.goto(gw.url + "/dashboard/keys")
    assert new_key not in page.content()  # shown once only
    key_row = page.locator("#key-table tr", has_text="browser-made")
    assert new_key[:15] in key_row.inner_text() and "active" in key_row.inner_text()
    with page.expect_navigation():
        key_row.locator("button", has_text="Revoke").click()
    with page.expect_navigation():  # a page asks first
        page.click("#confirm-revoke")
    assert "revoked" in page.inner_text("#revoked-notice")
    assert "revoked" in page.locator("#key-table tr", has_text="browser-made").inner_text()
    watch.shot("08-key-revoked")
    from openai import AuthenticationError

    with pytest.raises(AuthenticationError):
        chat(gw, new_key, "after revocation")

    # Sign out: the pages are closed again.
    with page.expect_navigation():
        page.click("#sign-out")
    assert page.url == gw.url + "/dashboard/login"
    watch.shot("09-signed-out")
    page.goto(gw.url + "/dashboard/logs")
    assert page.url == gw.url + "/dashboard/login"
    assert watch.dialogs == [] and watch.csp_errors == []


def test_traced_markup_shows_as_text(watch, gw):
    image = "data:image/png;base64," + base64.b64encode(png(48, 32)).decode()
    from openai import OpenAI

    client = OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0,
                    default_headers={"X-App-ID": XSS_APP})
    done = client.chat.completions.create(model=MODEL, extra_body={"observability": True},
                                          messages=[{"role": "user", "content": [
                                              {"type": "text", "text": XSS_PROMPT},
                                              {"type": "image_url", "image_url": {"url": image}}]}])
    client.close()
    wait_for_log(gw, MASTER_KEY, done.id)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    page.goto(gw.url + "/dashboard/logs")
    assert XSS_APP in page.locator(f'tr[data-id="{done.id}"]').inner_text()
    page.goto(f"{gw.url}/dashboard/logs/{done.id}")
    assert XSS_PROMPT in page.inner_text("#request")
    assert XSS_APP in page.inner_text(".facts")
    assert page.locator('img[src="x"], img[src="y"]').count() == 0  # no markup was made
    assert page.locator("main script").count() == 0
    thumb = page.locator("img.thumb")  # the real image is shown, as a thumbnail
    assert thumb.count() == 1
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 48
    watch.shot("10-detail-with-markup")
    page.reload()
    assert watch.dialogs == []
    assert watch.csp_errors == []


ATTACKER_PAGE = """<!doctype html><html><body>
<form method="post" action="{target}/dashboard/keys">
<input name="name" value="made-by-attacker"><button id="go" type="submit">Win a prize</button>
</form></body></html>"""


def test_cross_origin_post_without_token_is_refused(watch, gw):
    async def attacker(scope, receive, send):
        if scope["type"] != "http":
            return
        body = ATTACKER_PAGE.format(target=gw.url).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.body", "body": body})

    server = ServerThread(attacker).start()  # another origin: same host, another port
    try:
        sign_in(watch, gw, MASTER_KEY)
        page = watch.page
        page.goto(server.url + "/")
        with page.expect_response(lambda r: r.url == gw.url + "/dashboard/keys") as info:
            page.click("#go")
        assert info.value.status == 403
        watch.shot("11-cross-origin-refused")
        # the same POST from the dashboard's own origin but without the token: refused too
        response = page.context.request.post(gw.url + "/dashboard/keys",
                                             form={"name": "made-without-token"},
                                             headers={"origin": gw.url}, max_redirects=0)
        assert response.status == 403
    finally:
        server.stop()
    names = [k["name"] for k in httpx.get(f"{gw.url}/admin/keys", headers={
        "authorization": f"Bearer {MASTER_KEY}"}).json()["data"]]
    assert "made-by-attacker" not in names and "made-without-token" not in names


def test_a_key_cannot_open_another_keys_detail(watch, gw):
    key_a, key_b = admin_key(gw, "browser-a"), admin_key(gw, "browser-b")
    mine = chat(gw, key_a["key"], "prompt of key A")
    theirs = chat(gw, key_b["key"], "private prompt of key B")
    wait_for_log(gw, MASTER_KEY, mine.id)
    wait_for_log(gw, MASTER_KEY, theirs.id)
    sign_in(watch, gw, key_a["key"])
    page = watch.page
    page.goto(gw.url + "/dashboard/logs")
    assert row_ids(page) == [mine.id]
    assert page.locator('nav a[href="/dashboard/keys"]').count() == 0
    own = page.goto(f"{gw.url}/dashboard/logs/{mine.id}")
    assert own.status == 200 and "prompt of key A" in page.inner_text("#request")
    other = page.goto(f"{gw.url}/dashboard/logs/{theirs.id}")
    assert other.status == 404
    assert "private prompt of key B" not in page.content()
    watch.shot("12-other-keys-detail-404")
    keys_page = page.goto(gw.url + "/dashboard/keys")
    assert keys_page.status == 403
    usage = orjson.loads(page.goto(gw.url + "/dashboard/usage").text()
                         .split('id="usage-data">')[1].split("</script>")[0])
    requests = next(c for c in usage["charts"] if c["id"] == "requests")
    assert sum(sum(s["values"]) for s in requests["series"]) == 1  # only its own request
    assert watch.dialogs == [] and watch.csp_errors == []

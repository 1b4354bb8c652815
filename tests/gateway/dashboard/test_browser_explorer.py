"""The request explorer in a real headless Chromium against the real gateway process: pages
that fit the window with 40+ rows, search, replay from Detail, keys made once.

The screenshots of docs/dashboard.md are made here: into docs/img/ (viewport-sized PNGs)
with LUNOS_UPDATE_DOCS=1 or when one is missing, else into tests/artifacts/dashboard/, so an
ordinary run leaves the docs as they are.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
import pytest

from tests.gateway.dashboard.test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    Watch,
    admin_key,
    browser,
    gw,
    row_ids,
    sign_in,
    wait_for_log,
)
from tests.gateway_process import MASTER_KEY
from tests.standins.harness import send_json

DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
WORDS = ("A long question about invoices, refunds and the quarterly report for the finance "
         "team, with an identifier like ORDER-2026-000123-XYZ and a URL "
         "https://example.com/a/very/long/path/that/does/not/break/by/itself/at/all ")


def post(gw, body: dict, headers=None) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30,
                      headers={**MASTER, "x-app-id": "explorer", **(headers or {})})


def ask(text: str, model: str = "openai/gpt-4o-mini", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}],
            "observability": True, **extra}


@pytest.fixture(scope="module")
def history(gw, standins):
    """42 traced requests with long text, a session of two turns, a fallback and an error."""
    ids = [post(gw, ask(f"{WORDS} number {i}")).headers["x-request-id"] for i in range(42)]
    for turn in ("first turn", "second turn"):
        ids.append(post(gw, ask(turn), {"x-lunos-session-id": "conversation-7"}).headers["x-request-id"])
    for _ in range(3):
        standins.openai.scripted.append(lambda rec, send: send_json(send, 500, {"error": {"message": "down"}}))
    fallback = post(gw, ask("fall back please", model="openai/gpt-4o",
                            fallback_model="anthropic/claude-haiku-4-5")).headers["x-request-id"]
    word = "pelican" + secrets.token_hex(3)
    unique = post(gw, ask(f"Where does the {word} nest?")).headers["x-request-id"]
    ids += [fallback, unique]
    for row_id in ids:
        wait_for_log(gw, MASTER_KEY, row_id)
    return {"ids": ids, "fallback": fallback, "unique": unique, "word": word}


def fits(page) -> None:
    """Nothing wider than the window: no sideways scroll, no column cut off by a table."""
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    wider = page.evaluate("""() => [...document.querySelectorAll('main *')]
        .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                      && el.getClientRects().length && !el.closest('.u-legend, pre, details:not([open])'))
        .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))""")
    assert wider == []
    scrolled = page.evaluate("""() => [...document.querySelectorAll('.table-wrap, table')]
        .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.id || el.className)""")
    assert scrolled == []


def shot(watch: Watch, name: str) -> None:
    path = DOCS_IMG / f"dashboard-{name}.png"
    if path.exists() and os.environ.get("LUNOS_UPDATE_DOCS") != "1":
        path = ARTIFACTS / path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    watch.page.screenshot(path=str(path))


@pytest.fixture
def sized(browser):
    contexts = []

    def make(width: int) -> Watch:
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        return Watch(context)

    yield make
    for context in contexts:
        context.close()


@pytest.mark.parametrize("width", [1280, 400, 1920])
def test_pages_fit_the_window(sized, gw, history, width):
    watch = sized(width)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    pages = {"logs": "/dashboard/logs", "detail": f"/dashboard/logs/{history['fallback']}",
             "usage": "/dashboard/usage?days=1", "usage-30-days": "/dashboard/usage?days=30",
             "keys": "/dashboard/keys", "session": "/dashboard/logs?session=conversation-7&order=oldest"}
    admin_key(gw, "a-key-with-a-rather-long-name-for-the-table-" + secrets.token_hex(4))
    for name, path in pages.items():
        page.goto(gw.url + path)
        if name.startswith("usage"):
            page.wait_for_selector("body[data-charts='4']")
        if name == "logs":
            assert len(row_ids(page)) >= 46  # every row, long ones
            assert page.locator("#log-table th", has_text="Cost").is_visible() or width <= 400
        fits(page)
        if width == 1280:
            shot(watch, name)
        elif width == 400 and name in ("logs", "detail"):
            page.locator("#log-table, #timeline").first.scroll_into_view_if_needed()
            shot(watch, f"{name}-narrow")
    assert watch.dialogs == [] and watch.csp_errors == []


def test_detail_shows_the_fallback_on_a_timeline(sized, gw, history):
    watch = sized(1280)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    page.goto(f"{gw.url}/dashboard/logs/{history['fallback']}")
    assert page.inner_text("#row-requested-model").startswith("openai/gpt-4o")
    assert page.inner_text("#row-model") == "anthropic/claude-haiku-4-5"
    kinds = page.eval_on_selector_all("#timeline .waterfall li .tag", "els => els.map(e => e.textContent)")
    assert kinds == ["first try", "retry", "retry", "fallback"]
    starts = page.eval_on_selector_all("#timeline .wf-span", "els => els.map(e => +e.getAttribute('x'))")
    assert starts == sorted(starts) and starts[-1] > starts[0]


def test_search_box_finds_the_request(sized, gw, history):
    watch = sized(1280)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    page.fill("#search", history["word"])
    with page.expect_navigation():
        page.press("#search", "Enter")
    assert row_ids(page) == [history["unique"]]
    assert history["word"] in page.inner_text("#log-table")  # the prompt's preview
    assert page.inner_text("#total").endswith("of 1")
    shot(watch, "search")
    page.select_option("#order", "oldest")
    page.fill("#search", "")
    with page.expect_navigation():
        page.click('#filters button[type="submit"]')
    assert row_ids(page)[0] == history["ids"][0]


def test_replay_on_detail_runs_another_model(sized, gw, history):
    watch = sized(1280)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    page.goto(f"{gw.url}/dashboard/logs/{history['unique']}")
    page.fill("#replay-models", "anthropic/claude-haiku-4-5")
    with page.expect_navigation():
        page.click("#replay-run")
    runs = page.locator("#runs .run")
    assert runs.count() == 2
    replayed = runs.nth(1).inner_text()
    assert "anthropic/claude-haiku-4-5" in replayed
    assert f"You said: Where does the {history['word']} nest?" in replayed
    shot(watch, "replay")
    rows = httpx.get(f"{gw.url}/v1/logs", headers=MASTER, params={"q": history["word"]}).json()["data"]
    assert [r["replay_of"] for r in rows if r["id"] != history["unique"]] == [history["unique"]]
    assert watch.dialogs == [] and watch.csp_errors == []


def test_created_key_and_reload_make_one_key(sized, gw):
    watch = sized(1280)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    name = "reload-" + secrets.token_hex(4)
    page.goto(gw.url + "/dashboard/keys")
    page.fill('#create-key input[name="name"]', name)
    with page.expect_navigation():
        page.click('#create-key button[type="submit"]')
    assert page.url == gw.url + "/dashboard/keys"
    secret = page.inner_text("#new-key-value")
    assert secret.startswith("sk-lunos-")
    page.reload()
    page.reload()
    assert secret not in page.content()
    keys = httpx.get(f"{gw.url}/admin/keys", headers=MASTER).json()["data"]
    assert [k["name"] for k in keys].count(name) == 1
    assert page.locator("#key-table tr", has_text=name).count() == 1


def test_a_click_on_a_chart_opens_that_hours_requests(sized, gw, history):
    watch = sized(1280)
    sign_in(watch, gw, MASTER_KEY)
    page = watch.page
    page.goto(gw.url + "/dashboard/usage?days=1")
    page.wait_for_selector("body[data-charts='4']")
    over = page.locator("#chart-requests .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)  # this hour
    with page.expect_navigation():
        page.mouse.click(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
    assert "/dashboard/logs?since=" in page.url and "until=" in page.url
    assert set(history["ids"]) <= set(row_ids(page)) or len(row_ids(page)) >= 46


def test_dark_mode_and_local_time(browser, gw, history):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark",
                                  timezone_id="Asia/Kolkata")
    try:
        watch = Watch(context)
        sign_in(watch, gw, MASTER_KEY)
        page = watch.page
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 19, 28)"  # the dark palette, as the system asks
        cell = page.locator(f'tr[data-id="{history["unique"]}"] td.time')
        utc = cell.inner_text()
        assert utc.endswith("UTC")
        page.click("#tz-toggle")
        local = cell.inner_text()
        assert not local.endswith("UTC") and local != utc and page.inner_text("#tz-toggle") == "Local time"
        page.reload()  # the choice is kept
        assert cell.inner_text() == local
        shot(watch, "logs-dark")
        page.click("#tz-toggle")
        assert cell.inner_text() == utc
        assert watch.dialogs == [] and watch.csp_errors == []
    finally:
        context.close()

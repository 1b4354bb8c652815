"""Every template escapes what it shows; trace URLs are admitted only with safe schemes."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from lunos.gateway.auth import Principal
from lunos.gateway.dashboard import charts, trace, views
from lunos.gateway.dashboard.csrf import Csrf
from lunos.gateway.dashboard.session import Session

XSS = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>"
TEMPLATES = Path(views.__file__).parent / "templates"


def ctx() -> views.Context:
    principal = Principal(XSS, XSS, is_master=True)
    return views.Context(None, None, Csrf(b"s" * 32), Session("h" * 64, XSS, 0.0), principal)


def log_row() -> dict:
    return {
        "id": XSS, "key_id": XSS, "app_id": XSS, "endpoint": XSS, "model": XSS, "provider": XSS,
        "status": 502,
        "error": XSS,
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
                  "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
                  "cost": 0.5},
        "latency_ms": 12.0, "ttft_ms": 3.0, "tokens_per_second": 40.0, "stream": True,
        "created_at": XSS, "requested_model": XSS, "session_id": XSS, "replay_of": XSS,
        "attempts": [{"model": XSS, "provider": XSS, "status": 500, "error": XSS,
                      "latency_ms": 1.0, "started_ms": 0.5}],
        "dropped_params": [XSS], "trace": True, "request": None, "response": None,
        "extra": {"searches": [XSS]},
    }


TRACE_REQUEST = {
    "messages": [
        {"role": XSS, "name": XSS, "content": XSS},
        {"role": "user", "content": [
            {"type": "text", "text": XSS},
            {"type": "image_url", "image_url": {"url": "https://img.example/" + XSS}},
            {"type": "image_url", "image_url": {"url": "http://img.example/" + XSS}},
            {"type": XSS, XSS: XSS},
        ]},
        {"role": "assistant", "content": None, "reasoning_content": XSS,
         "tool_calls": [{"id": XSS, "type": "function",
                         "function": {"name": XSS, "arguments": '{"q": "' + XSS.replace('"', "") + '"}'}}]},
        {"role": "tool", "tool_call_id": XSS, "content": XSS},
    ],
    "params": {"model": XSS, "temperature": 0.2},
}
TRACE_RESPONSE = {
    "content": XSS, "reasoning": XSS, "finish_reason": XSS,
    "tool_calls": [{"id": XSS, "type": "function", "function": {"name": XSS, "arguments": XSS}}],
    "annotations": [{"type": "url_citation", "url_citation": {
        "url": "https://cite.example/" + XSS, "title": XSS, "content": XSS}}],
}


def key_row() -> dict:
    return {"id": XSS, "name": XSS, "prefix": XSS, "created_at": XSS, "revoked_at": None,
            "expires_at": XSS, "budget_usd": 1.0, "rpm": 1, "tpm": 2, "allowed_models": [XSS],
            "spend_usd": 0.0, "status": "active"}


def usage_rows() -> list[dict]:
    return [{"day": "2030-01-02", "model": XSS, "app_id": XSS, "requests": 2, "errors": 1,
             "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0,
             "reasoning_tokens": 0, "total_tokens": 15, "cost": 0.25, "cache_hits": 1,
             "cache_lookups": 2, "cache_saved_usd": 0.5}]


def _usage_values() -> dict:
    import datetime

    days = charts.day_list(datetime.date(2030, 1, 1), datetime.date(2030, 1, 3))
    table = [{"model": XSS, "endpoint": XSS, "key": XSS, "key_name": XSS, "requests": 2,
              "error_rate": 0.5, "latency_p50_ms": 1.0, "latency_p95_ms": 2.0, "ttft_p50_ms": None,
              "prompt_tokens": 1, "completion_tokens": 1, "cost": 0.1, "cache_hit_rate": None,
              "cache_saved_usd": 0.0}]
    return {"days": 30, "periods": views.USAGE_PERIODS, "since_param": XSS, "until_param": XSS,
            "budget": {"budget": 1.0, "spent": 0.5, "left": 0.5},
            **charts.usage_view(usage_rows(), days),
            "by_model": table, "by_endpoint": table, "by_key": table}


PAGES = {
    "login.html": lambda: {"error": XSS, "login_csrf": XSS},
    "error.html": lambda: {"code": 400, "message": XSS},
    "logs.html": lambda: {"rows": [{**log_row(), "preview": trace.preview(log_row())}], "filters": dict.fromkeys(views.LOG_FILTERS, XSS),
                          "error": XSS, "choices": {"models": [XSS], "apps": [XSS]},
                          "endpoints": [XSS], "orders": [(XSS, XSS)], "total": 1,
                          "first_row": 1, "last_row": 1, "export_query": XSS, "prev_url": XSS,
                          "paged": True, "next_url": XSS, "first_url": XSS},
    "detail.html": lambda: {"row": log_row(), "request": trace.request_view(TRACE_REQUEST),
                            "response": trace.response_view(TRACE_RESPONSE), "extra": XSS,
                            "timeline": trace.timeline(log_row()), "newer": XSS, "older": XSS,
                            "runs": [{**log_row(), "view": trace.response_view(TRACE_RESPONSE)}],
                            "raw_json": XSS, "replay_error": XSS},
    "usage.html": _usage_values,
    "keys.html": lambda: {"keys": [key_row()], "error": XSS, "notice": XSS, "editing": key_row(),
                          "created": {**key_row(), "key": XSS},
                          "form": dict.fromkeys(views.KEY_FORM, XSS)},
    "confirm.html": lambda: {"key": key_row(), "action": "revoke"},
}


def test_every_page_template_is_covered():
    pages = {p.name for p in TEMPLATES.glob("*.html")} - {"base.html"}
    assert pages == set(PAGES)


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_template_escapes_everything(name):
    html = views.render(name, ctx(), title=XSS, **PAGES[name]()).body.decode()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for tag, attrs in Tags(html).tags:
        assert tag != "style"
        assert not any(a.startswith("on") or a == "style" for a in attrs), (tag, attrs)
        if tag == "script":  # only our own files, or inert JSON
            assert attrs.get("src", "").startswith("/dashboard/static/") or \
                attrs.get("type") == "application/json", attrs
        if tag == "img":
            assert attrs["src"].startswith(("data:image/", "https://")), attrs
        if tag in ("a", "link") and "href" in attrs:
            assert attrs["href"].startswith(("/", "https://", "http://")) \
                or attrs["href"] == XSS, attrs  # XSS: a test value, escaped into one attribute


def test_usage_data_is_inert_json():
    html = views.render("usage.html", ctx(), title="Usage", **_usage_values()).body.decode()
    start = html.index('<script type="application/json" id="usage-data">')
    body = html[start:html.index("</script>", start)]
    assert "<" not in body.split(">", 1)[1]  # \u003c in JSON, so no tag can close the element


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:x", "//evil.example/x.png", 42, None,
])
def test_unsafe_urls_are_neither_images_nor_links(url):
    assert trace.image_src(url) is None
    assert trace.link_href(url) is None
    message = trace.message_view({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]})
    assert message["parts"][0]["kind"] == "text"
    citation = trace.response_view({"annotations": [{"type": "url_citation",
                                                     "url_citation": {"url": url}}]})
    assert citation["citations"][0]["href"] is None


def test_safe_urls_are_kept():
    assert trace.image_src("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"
    assert trace.image_src("https://img.example/a.png") == "https://img.example/a.png"
    assert trace.image_src("http://img.example/a.png") is None  # CSP would block it anyway
    assert trace.link_href("http://img.example/a.png") == "http://img.example/a.png"
    parts = trace.message_view({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://img.example/a.png"}}]})["parts"]
    assert parts == [{"kind": "link", "url": "http://img.example/a.png",
                      "text": "http://img.example/a.png"}]


def test_unsafe_urls_never_reach_the_page():
    request = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}}]}]}
    response = {"content": "ok", "annotations": [
        {"type": "url_citation", "url_citation": {"url": "javascript:alert(2)", "title": "t"}}]}
    html = views.render("detail.html", ctx(), title="x", **{
        **PAGES["detail.html"](), "request": trace.request_view(request),
        "response": trace.response_view(response), "extra": ""}).body.decode()
    assert 'href="javascript' not in html and 'src="javascript' not in html
    assert "javascript:alert(1)" in html  # shown, as text


def test_trace_view_shapes():
    view = trace.request_view(TRACE_REQUEST)
    assert [m["role"] for m in view["messages"]] == [XSS, "user", "assistant", "tool"]
    assert [p["kind"] for p in view["messages"][1]["parts"]] == ["text", "image", "link", "json"]
    call = view["messages"][2]["tool_calls"][0]
    assert call["name"] == XSS and call["arguments"].startswith("{\n")  # pretty-printed
    assert view["messages"][3]["tool_call_id"] == XSS
    assert '"temperature": 0.2' in view["params"]
    out = trace.response_view(TRACE_RESPONSE)
    assert out["content"] == XSS and out["citations"][0]["title"] == XSS
    assert out["citations"][0]["href"].startswith("https://cite.example/")
    assert trace.request_view(None) is None and trace.response_view(None) is None


def test_usage_view_fills_days_and_groups():
    import datetime

    rows = [
        {"day": "2030-01-01", "model": "a", "app_id": "x", "requests": 2, "errors": 0,
         "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 1, "cost": 0.5,
         "cache_hits": 1, "cache_lookups": 2, "cache_saved_usd": 0.25},
        {"day": "2030-01-03", "model": "b", "app_id": "x", "requests": 1, "errors": 1,
         "prompt_tokens": 4, "completion_tokens": 0, "cached_tokens": 0, "cost": 0.0,
         "cache_hits": 0, "cache_lookups": 0, "cache_saved_usd": 0.0},
        {"day": "2029-12-01", "model": "old", "app_id": "y", "requests": 9, "errors": 0,
         "prompt_tokens": 9, "completion_tokens": 9, "cached_tokens": 0, "cost": 9.0,
         "cache_hits": 9, "cache_lookups": 9, "cache_saved_usd": 9.0},
    ]
    days = charts.day_list(datetime.date(2030, 1, 1), datetime.date(2030, 1, 3))
    view = charts.usage_view(rows, days)
    data = view["chart_data"]
    assert data["x"] == [1893456000, 1893542400, 1893628800]
    by_id = {c["id"]: c for c in data["charts"]}
    assert by_id["requests"]["series"] == [{"label": "a", "values": [2, 0, 0]},
                                           {"label": "b", "values": [0, 0, 1]}]
    assert by_id["tokens"]["series"][0]["values"] == [10, 0, 4]
    assert by_id["apps"]["series"] == [{"label": "x", "values": [2, 0, 1]}]
    assert view["totals"]["requests"] == 3 and view["totals"]["cost"] == 0.5
    assert (view["totals"]["cache_hit_rate"], view["totals"]["cache_saved_usd"]) == (0.5, 0.25)
    assert [r["label"] for r in view["by_model"]] == ["a", "b"]
    ranked = charts.ranked_table(rows[:2], "model", {})
    assert [(r["model"], r["cache_hit_rate"]) for r in ranked] == [("a", 0.5), ("b", None)]


def test_usage_view_folds_small_series_into_other():
    rows = [{"day": "2030-01-01", "model": f"m{i}", "app_id": "x", "requests": 10 - i,
             "errors": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
             "cost": 0.0, "cache_hits": 0, "cache_lookups": 0, "cache_saved_usd": 0.0}
            for i in range(charts.TOP + 2)]
    view = charts.usage_view(rows, ["2030-01-01"])
    series = view["chart_data"]["charts"][0]["series"]
    assert len(series) == charts.TOP + 1
    assert series[-1]["label"] == "other"
    assert series[-1]["values"] == [sum(10 - i for i in range(charts.TOP, charts.TOP + 2))]


def test_markdown_is_rendered_without_any_markup_of_its_own():
    from lunos.gateway.dashboard.markdown import render

    html = str(render(f"# Head\n**bold** `{XSS}` {XSS}\n- [ok](https://a.example/?x=1&y=2)\n"
                      f"- [no](javascript:alert(1))\n```\n{XSS}\n```"))
    assert "<h3>Head</h3>" in html and "<strong>bold</strong>" in html
    assert '<a href="https://a.example/?x=1&amp;y=2" rel="noopener noreferrer"' in html
    assert 'href="javascript' not in html and "[no](javascript:alert(1))" in html
    tags = {tag for tag, _ in Tags(html).tags}
    assert tags <= {"h3", "p", "strong", "code", "ul", "li", "a", "pre", "br", "em"}
    assert "<script" not in html and "onerror=" not in html.replace("onerror=alert(2)&gt;", "")


def test_timeline_names_retries_fallbacks_and_tool_turns():
    def attempt(model, status, start, took, error=None):
        return {"model": model, "provider": model.split("/")[0], "status": status,
                "error": error, "started_ms": start, "latency_ms": took}

    row = {"latency_ms": 1000.0, "attempts": [
        attempt("openai/a", 500, 0, 100, "down"), attempt("openai/a", 500, 300, 100, "down"),
        attempt("google/b", 200, 400, 200), attempt("google/b", 200, 800, 200)]}
    steps = trace.timeline(row)
    assert [s["kind"] for s in steps] == ["first try", "retry", "fallback", "turn"]
    assert [s["wait_ms"] for s in steps] == [0, 200, 0, 200]  # backoff, then searching
    assert steps[3]["wait"] == "tools and searches" and steps[1]["wait"] == "waited"
    assert [s["x"] for s in steps] == [0, 300, 400, 800] and steps[2]["width"] == 200
    assert [s["failed"] for s in steps] == [True, True, False, False]

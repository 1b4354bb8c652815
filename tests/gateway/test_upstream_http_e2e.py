"""Upstream HTTP through a running `lunos serve`, with the official `openai` SDK, on both
transports (`LUNOS_HTTP_TRANSPORT=fast|httpx`).

- An egress proxy (tests/standins/egress_proxy.py, with credentials) set in HTTP_PROXY and
  HTTPS_PROXY must see every upstream call: plain http providers and the search backend in
  absolute form, an https provider and an https image fetch through CONNECT (TLS inside the
  tunnel, checked against the stand-in's certificate). The fetch policy still refuses a
  loopback address, proxy or not. The proxy's password never reaches a log or a client.
- With NO_PROXY naming the stand-ins' hosts the same gateway setup goes direct, and a
  provider whose answers end when it closes the connection (no length, no chunking) works
  for JSON and for streams.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import openai
import pytest

from tests.conftest import OPENAI_KEY
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.egress_proxy import EgressProxy
from tests.standins.harness import ServerThread
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.raw_http import RawServer, close_delimited

PASSWORD = "pr0xy p@ss:word"
TRANSPORTS = ["fast", "httpx"]
HELLO = [{"role": "user", "content": "hello world"}]


def raw_answer(method: str, path: str, body: bytes):
    """An OpenAI-compatible provider that ends every answer by closing the connection."""
    request = json.loads(body)
    if not request.get("stream"):
        completion = {"id": "raw-1", "object": "chat.completion", "created": 1, "model": request["model"],
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "ended by the close"}}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
        return close_delimited("application/json", json.dumps(completion).encode())

    def event(delta: dict, finish: str | None = None) -> tuple[float, bytes]:
        chunk = {"id": "raw-1", "object": "chat.completion.chunk", "created": 1, "model": request["model"],
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return 0.02, b"data: " + json.dumps(chunk).encode() + b"\n\n"

    return close_delimited("text/event-stream", event({"role": "assistant", "content": ""}),
                           *(event({"content": word}) for word in ("ended ", "by ", "the ", "close")),
                           event({}, "stop"), (0.02, b"data: [DONE]\n\n"))


@pytest.fixture(scope="module")
def proxy():
    p = EgressProxy(credentials=("egress", PASSWORD)).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def secure_openai(standins):
    """An OpenAI stand-in on https://localhost, with the image server's certificate (the
    gateways trust it through SSL_CERT_FILE)."""
    app = OpenAIStandIn(OPENAI_KEY)
    server = ServerThread(app, ssl_certfile=str(standins.cert),
                          ssl_keyfile=str(standins.cert.with_suffix(".key"))).start()
    server.url = server.url.replace("http://127.0.0.1", "https://localhost")
    server.app = app
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw_provider():
    server = RawServer(raw_answer).start()
    yield server
    server.stop()


def gateway_env(standins, proxy, secure_openai, raw_provider, transport: str) -> dict[str, str]:
    url = proxy.url("egress", quote(PASSWORD, safe=""))
    return {
        **standins.env(),
        # openai over https (CONNECT); groq and the search backend over plain http.
        "OPENAI_BASE_URL": secure_openai.url + "/v1",
        "TOGETHER_BASE_URL": raw_provider.url + "/v1",
        "TOGETHER_API_KEY": "sk-together-test",
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url,
        "LUNOS_HTTP_TRANSPORT": transport,
    }


def start(tmp_path_factory, env: dict[str, str]) -> GatewayProcess:
    return GatewayProcess(tmp_path_factory.mktemp("gateway"), env).start()


@pytest.fixture(scope="module", params=TRANSPORTS)
def proxied(request, standins, proxy, secure_openai, raw_provider, tmp_path_factory):
    env = gateway_env(standins, proxy, secure_openai, raw_provider, request.param)
    g = start(tmp_path_factory, env)
    yield g
    g.stop()


@pytest.fixture(scope="module", params=TRANSPORTS)
def direct(request, standins, proxy, secure_openai, raw_provider, tmp_path_factory):
    env = gateway_env(standins, proxy, secure_openai, raw_provider, request.param)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    g = start(tmp_path_factory, env)
    yield g
    g.stop()


def sdk(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def stream_text(client: openai.OpenAI, model: str) -> str:
    stream = client.chat.completions.create(model=model, messages=HELLO, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


# ---------------------------------------------------------------- through the proxy
def test_an_https_provider_is_reached_through_a_connect_tunnel(proxied, proxy, secure_openai, upstreams):
    secure_openai.app.reset()
    proxy.seen.clear()
    client = sdk(proxied)
    assert client.chat.completions.create(model="openai/gpt-4o", messages=HELLO) \
        .choices[0].message.content == "You said: hello world"
    assert stream_text(client, "openai/gpt-4o") == "You said: hello world"
    port = secure_openai.port
    assert set(proxy.targets()) == {f"CONNECT localhost:{port}"}
    assert all("proxy-authorization" in headers for _, _, headers in proxy.seen)
    # TLS ran end to end inside the tunnel: the stand-in got the provider key, not the proxy's.
    assert len(secure_openai.app.requests) == 2
    assert secure_openai.app.last.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "proxy-authorization" not in secure_openai.app.last.headers


def test_a_plain_http_provider_is_sent_to_the_proxy_in_absolute_form(proxied, proxy, upstreams):
    proxy.seen.clear()
    client = sdk(proxied)
    assert client.chat.completions.create(model="groq/llama-3.3-70b-versatile", messages=HELLO) \
        .choices[0].message.content == "You said: hello world"
    assert stream_text(client, "groq/llama-3.3-70b-versatile") == "You said: hello world"
    url = upstreams.servers["openai"].url + "/v1/chat/completions"
    assert proxy.targets() == [f"POST {url}", f"POST {url}"]
    assert [len(r.json["messages"]) for r in upstreams.openai.requests] == [1, 1]
    assert "proxy-authorization" not in upstreams.openai.last.headers  # the proxy consumed it


def test_an_image_fetch_goes_through_the_proxy_and_the_policy_still_applies(proxied, proxy, upstreams):
    proxy.seen.clear()
    client = sdk(proxied)
    url = upstreams.image_server.url + "/pixel.png"  # https://localhost:<port>, allowed by name
    r = client.chat.completions.create(model="google/gemini-2.5-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert r.choices[0].message.content.startswith("I see 1 image: image/png")
    assert upstreams.images.hits == ["/pixel.png"]
    assert f"CONNECT localhost:{upstreams.image_server.port}" in proxy.targets()
    # A loopback address is refused before anything is sent, proxy or not.
    proxy.seen.clear()
    upstreams.images.hits.clear()
    internal = f"https://127.0.0.1:{upstreams.image_server.port}/pixel.png"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="google/gemini-2.5-flash", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": internal}}]}])
    assert info.value.body["code"] == "fetch_refused"
    assert proxy.seen == [] and upstreams.images.hits == []


def test_the_search_backend_is_reached_through_the_proxy(proxied, proxy, upstreams):
    proxy.seen.clear()
    r = sdk(proxied).chat.completions.create(
        model="groq/llama-3.3-70b-versatile", tools=[{"type": "web_search"}],
        messages=[{"role": "user", "content": "search the latest lunos release"}])
    assert "According to the web" in r.choices[0].message.content
    search = upstreams.servers["search"].url + "/search?"
    assert len(upstreams.search.queries) == 1
    assert [t for t in proxy.targets() if t.startswith("GET ")] == [
        f"GET {search}" + upstreams.search.requests[0].query]


def test_the_log_holds_neither_the_proxy_password_nor_the_upstream_urls(proxied, upstreams):
    log = proxied.log_path.read_text()
    assert PASSWORD not in log and quote(PASSWORD, safe="") not in log
    assert upstreams.image_server.url + "/pixel.png" not in log  # a user's URL, fetched above


def test_a_proxy_refusing_the_credentials_is_a_502_that_does_not_show_them(
        standins, proxy, secure_openai, raw_provider, tmp_path_factory, upstreams):
    env = gateway_env(standins, proxy, secure_openai, raw_provider, "fast")
    wrong = "wr0ng-s3cret"
    env["HTTPS_PROXY"] = proxy.url("egress", wrong)
    env["LUNOS_RETRIES"] = "0"
    g = start(tmp_path_factory, env)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            sdk(g).chat.completions.create(model="openai/gpt-4o", messages=HELLO)
        assert info.value.status_code == 502
        assert "407" in info.value.body["message"]
        assert wrong not in json.dumps(info.value.body)
    finally:
        g.stop()
    assert wrong not in g.log_path.read_text()


# ---------------------------------------------------------------- NO_PROXY, and bodies ended by the close
def test_no_proxy_hosts_are_reached_directly(direct, proxy, secure_openai, upstreams):
    proxy.seen.clear()
    client = sdk(direct)
    for model in ("openai/gpt-4o", "groq/llama-3.3-70b-versatile"):
        assert client.chat.completions.create(model=model, messages=HELLO) \
            .choices[0].message.content == "You said: hello world"
        assert stream_text(client, model) == "You said: hello world"
    assert proxy.seen == []


def test_a_provider_that_ends_its_answers_by_closing_the_connection(direct, raw_provider):
    client = sdk(direct)
    r = client.chat.completions.create(model="together/raw-model", messages=HELLO)
    assert r.choices[0].message.content == "ended by the close"
    assert r.usage.total_tokens == 7
    assert stream_text(client, "together/raw-model") == "ended by the close"

"""The guarded fetch: refuses internal targets however they are spelled, also through
redirects, unless the host as written is allowed; caps size and time. The server records
every hit, so each refusal also proves nothing was fetched."""

from __future__ import annotations

import pytest

from lunos.gateway.fetch import Fetcher, FetchPolicy, FetchRefused
from lunos.gateway.http_client import HttpClient
from tests.standins.harness import ServerThread
from tests.standins.images import PNG_1X1, ImageServer


@pytest.fixture(scope="module")
def files():
    app = ImageServer()
    server = ServerThread(app).start()
    yield app, server.port
    server.stop()


def fetcher(allow=(), **policy) -> Fetcher:
    return Fetcher(HttpClient(), FetchPolicy(frozenset(allow), **policy))


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "127.0.0.2", "2130706433", "0x7f.1", "127.1",
     "0177.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0"],
)
async def test_loopback_spellings_are_refused(files, host):
    app, port = files
    app.hits.clear()
    with pytest.raises(FetchRefused) as info:
        await fetcher().fetch(f"http://{host}:{port}/pixel.png", param="messages[0].content[0].image_url.url")
    error = info.value
    assert error.status == 400 and error.param == "messages[0].content[0].image_url.url"
    assert f"{host}:{port}/pixel.png" in error.message
    assert app.hits == []


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/a.png", "http://192.168.0.1/",
     "http://172.16.5.4/", "http://100.64.0.1/", "http://[fe80::1]/", "http://[fd00:ec2::254]/",
     "http://224.0.0.1/"],
)
async def test_private_link_local_and_metadata_are_refused(url):
    with pytest.raises(FetchRefused, match="loopback, private, link-local or metadata"):
        await fetcher().fetch(url)


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/"])
async def test_only_http_and_https(url):
    with pytest.raises(FetchRefused, match="only http and https"):
        await fetcher().fetch(url)


async def test_allow_list_admits_the_host_as_written(files):
    app, port = files
    app.hits.clear()
    result = await fetcher(allow={"localhost"}).fetch(f"http://localhost:{port}/pixel.png")
    assert result.body == PNG_1X1 and result.content_type == "image/png"
    assert app.hits == ["/pixel.png"]
    with pytest.raises(FetchRefused):  # `localhost` does not admit 127.0.0.1
        await fetcher(allow={"localhost"}).fetch(f"http://127.0.0.1:{port}/pixel.png")
    assert app.hits == ["/pixel.png"]


async def test_redirect_to_a_refused_host_is_refused(files):
    app, port = files
    app.hits.clear()
    target = f"http://127.0.0.1:{port}/pixel.png"
    with pytest.raises(FetchRefused):
        await fetcher(allow={"localhost"}).fetch(f"http://localhost:{port}/redirect?to={target}")
    assert app.hits == [f"/redirect?to={target}"]  # the redirect target was never fetched


async def test_redirect_within_allowed_hosts_is_followed(files):
    _, port = files
    target = f"http://localhost:{port}/pixel.png"
    result = await fetcher(allow={"localhost"}).fetch(f"http://localhost:{port}/redirect?to={target}")
    assert result.body == PNG_1X1 and result.url == target


async def test_redirect_loop_is_bounded(files):
    _, port = files
    url = f"http://localhost:{port}/redirect?to=/redirect%3Fto%3D/redirect"
    with pytest.raises(FetchRefused):
        await fetcher(allow={"localhost"}, max_redirects=2).fetch(url)


async def test_size_cap(files):
    _, port = files
    with pytest.raises(FetchRefused, match=r"larger than|over"):
        await fetcher(allow={"localhost"}, max_bytes=1 << 20).fetch(f"http://localhost:{port}/big")


async def test_time_cap(files):
    _, port = files
    with pytest.raises(FetchRefused, match=r"within 0\.5 s"):
        await fetcher(allow={"localhost"}, timeout=0.5).fetch(f"http://localhost:{port}/slow")


async def test_http_error_status_is_a_refusal(files):
    _, port = files
    with pytest.raises(FetchRefused, match="HTTP 404"):
        await fetcher(allow={"localhost"}).fetch(f"http://localhost:{port}/missing.png")

"""The guarded fetch: refuses internal targets however they are spelled, also through
redirects, unless the host as written is allowed; caps size and time. The server records
every hit, so each refusal also proves nothing was fetched."""

from __future__ import annotations

import pytest

from lunos.gateway.fetch import Fetcher, FetchPolicy, FetchRefused, FetchTooLarge, _blocked
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


@pytest.mark.parametrize(
    "address",
    ["::127.0.0.1", "::7f00:1", "::10.0.0.1", "::169.254.169.254",  # IPv4-compatible
     "::ffff:0:127.0.0.1", "::ffff:0:7f00:1", "::ffff:0:192.168.1.1",  # IPv4-translated
     "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.1.2.3",  # NAT64
     "64:ff9b:1::8.8.8.8", "64:ff9b:1:ffff::1",  # local-use NAT64, refused whole
     "2002:7f00:1::", "2002:a00:1::1",  # 6to4
     "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo with client 127.0.0.1
     "fec0::1", "fec0:0:0:1::2", "feff::1",  # site-local
     "::ffff:127.0.0.1", "::", "::1"],
)
async def test_ipv6_addresses_are_judged_by_what_they_stand_for(address):
    assert _blocked(address)
    with pytest.raises(FetchRefused, match="loopback, private, link-local or metadata"):
        await fetcher().fetch(f"http://[{address}]/a.png")


@pytest.mark.parametrize("address", ["::8.8.8.8", "::ffff:0:8.8.8.8", "64:ff9b::8.8.8.8",
                                     "2002:808:808::", "::ffff:1.1.1.1", "2606:4700::1111"])
def test_public_addresses_in_any_spelling_pass(address):
    assert not _blocked(address)


@pytest.mark.parametrize("url", ["http://[::1/a.png", "http://[zz]/a.png", "https://[fe80::1%/"])
async def test_a_malformed_url_is_a_refusal_not_a_crash(url):
    with pytest.raises(FetchRefused, match="malformed") as info:
        await fetcher().fetch(url, param="messages[0].content[0].image_url.url")
    assert info.value.status == 400 and info.value.param == "messages[0].content[0].image_url.url"


async def test_a_redirect_to_a_malformed_url_is_a_refusal(files):
    _, port = files
    with pytest.raises(FetchRefused, match="malformed"):
        await fetcher(allow={"localhost"}).fetch(f"http://localhost:{port}/redirect?to=http://%5B::1/")


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


async def test_fetched_urls_fill_no_process_cache(files):
    """Image and page URLs come from users: nothing keeps them once the fetch is done."""
    from lunos.gateway import http_client

    _, port = files
    for i in range(3):
        await fetcher(allow={"localhost"}).fetch(f"http://localhost:{port}/pixel.png?{'x' * 1000}{i}")
    assert not hasattr(http_client._parse_url, "cache_info")


async def test_a_fetch_can_lower_the_size_cap(files):
    _, port = files
    url = f"http://localhost:{port}/big"  # 4 MiB, streamed without a length
    with pytest.raises(FetchTooLarge, match="larger than 65536 bytes"):
        await fetcher(allow={"localhost"}).fetch(url, limit=65536)
    with pytest.raises(FetchTooLarge, match="larger than 1048576 bytes"):  # never above the policy
        await fetcher(allow={"localhost"}, max_bytes=1 << 20).fetch(url, limit=1 << 30)
    result = await fetcher(allow={"localhost"}).fetch(url, limit=4 << 20)
    assert len(result.body) == 4 << 20

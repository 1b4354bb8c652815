"""Which upstream calls go through a proxy, read from the environment as curl reads it."""

from __future__ import annotations

import base64

import pytest

from lunos.gateway.config import ConfigError
from lunos.gateway.proxies import Proxies


def test_lower_case_names_win_and_all_proxy_is_the_fallback():
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2",
                                "ALL_PROXY": "all-proxy:3"})
    assert str(proxies.select("https", "api.openai.com", 443)) == "lower:2"
    assert str(proxies.select("http", "example.org", 80)) == "all-proxy:3"  # no scheme: http


def test_no_variables_no_proxy():
    proxies = Proxies.from_env({})
    assert not proxies
    assert proxies.select("https", "api.openai.com", 443) is None


@pytest.mark.parametrize("host,port,bypassed", [
    ("example.com", 443, True),
    ("api.example.com", 443, True),  # a name covers its subdomains
    ("notexample.com", 443, False),
    ("svc.internal", 443, True),  # ".internal": the leading dot is ignored
    ("internal", 443, True),
    ("10.2.3.4", 443, True),  # CIDR
    ("11.2.3.4", 443, False),
    ("::1", 8080, True),  # [::1]:8080
    ("::1", 8081, False),
    ("localhost", 9000, True),  # localhost:9000
    ("localhost", 80, False),  # loopback is proxied unless listed
    ("127.0.0.1", 80, False),
])
def test_no_proxy_forms(host, port, bypassed):
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://proxy:3128",
                                "NO_PROXY": "example.com, .internal,10.0.0.0/8,[::1]:8080,localhost:9000"})
    assert (proxies.select("https", host, port) is None) is bypassed


def test_star_bypasses_everything():
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "*"})
    assert proxies.select("https", "api.openai.com", 443) is None


def test_credentials_become_a_header_and_never_print():
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://us%40er:p%3Ass%20word@proxy:3128"})
    proxy = proxies.select("https", "api.openai.com", 443)
    assert proxy.authorization == "Basic " + base64.b64encode(b"us@er:p:ss word").decode()
    for text in (str(proxy), repr(proxy), repr(proxies)):
        assert "ss word" not in text and "p%3Ass" not in text and "Basic" not in text


@pytest.mark.parametrize("value", ["socks5://user:hunter2@proxy:1080", "https://user:hunter2@proxy:443",
                                   "http://user:hunter2@proxy:notaport"])
def test_an_unusable_proxy_is_a_config_error_naming_the_variable_not_its_value(value):
    with pytest.raises(ConfigError) as caught:
        Proxies.from_env({"HTTPS_PROXY": value})
    assert "HTTPS_PROXY" in str(caught.value)
    assert "hunter2" not in str(caught.value)

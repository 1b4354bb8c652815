"""CSRF tokens bound to the session, and the Origin/Referer check."""

from __future__ import annotations

from lunos.gateway.dashboard.csrf import Csrf, same_origin
from lunos.gateway.dashboard.session import derive_secret

csrf = Csrf(derive_secret("sk-lunos-master-for-csrf-tests", "csrf"))


def test_token_is_bound_to_the_session():
    token = csrf.token("sid-a")
    assert csrf.valid("sid-a", token)
    assert not csrf.valid("sid-b", token)
    assert csrf.token("sid-a") == token  # stable for the session: no server state


def test_missing_or_wrong_token_is_refused():
    assert not csrf.valid("sid-a", None)
    assert not csrf.valid("sid-a", "")
    assert not csrf.valid("sid-a", "0" * 64)
    assert not csrf.valid("sid-a", csrf.token("sid-a")[:-1])


def test_token_depends_on_the_secret():
    other = Csrf(derive_secret("sk-lunos-other-master", "csrf"))
    assert not other.valid("sid-a", csrf.token("sid-a"))


def headers(**values: str) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in values.items()}


def test_same_origin_accepts_matching_origin_or_referer():
    assert same_origin(headers(host="127.0.0.1:8000", origin="http://127.0.0.1:8000"))
    assert same_origin(headers(host="lunos.example", origin="https://lunos.example"))
    assert same_origin(headers(host="lunos.example",
                               referer="https://lunos.example/dashboard/keys"))
    assert same_origin(headers(host="Lunos.Example", origin="https://lunos.example"))


def test_same_origin_without_either_header_leaves_it_to_the_token():
    assert same_origin(headers(host="lunos.example"))


def test_cross_origin_is_refused():
    assert not same_origin(headers(host="127.0.0.1:8000", origin="http://127.0.0.1:9000"))
    assert not same_origin(headers(host="lunos.example", origin="https://evil.example"))
    assert not same_origin(headers(host="lunos.example", origin="null"))
    assert not same_origin(headers(host="lunos.example",
                                   referer="https://evil.example/lunos.example"))
    assert not same_origin(headers(host="lunos.example", origin="https://lunos.example.evil.io"))
    assert not same_origin(headers(host="lunos.example", origin="file://lunos.example"))
    # Origin wins over a matching Referer
    assert not same_origin(headers(host="lunos.example", origin="https://evil.example",
                                   referer="https://lunos.example/dashboard"))


def test_missing_host_is_refused_when_origin_is_sent():
    assert not same_origin(headers(origin="https://lunos.example"))

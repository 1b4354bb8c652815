"""Dashboard sessions: signing, expiry, tampering, and the key re-check on every request."""

from __future__ import annotations

import base64

import orjson

from lunos.gateway.auth import Authenticator, Principal
from lunos.gateway.dashboard.session import (
    COOKIE,
    Sessions,
    cookie_header,
    derive_secret,
    principal_for,
    read_cookie,
)
from lunos.gateway.keys import hash_key

MASTER = "sk-lunos-master-for-session-tests"
NOW = 1_800_000_000.0


def sessions(master: str = MASTER, lifetime: float = 3600) -> Sessions:
    return Sessions(derive_secret(master, "session"), lifetime)


def test_issued_session_reads_back_and_holds_no_raw_key():
    value, issued = sessions().issue(hash_key("sk-lunos-client"), now=NOW)
    read = sessions().read(value, now=NOW + 10)
    assert read == issued
    assert read.key_hash == hash_key("sk-lunos-client")
    assert read.expires_at == NOW + 3600
    payload = base64.urlsafe_b64decode(value.split(".")[0] + "==")
    assert b"sk-lunos-client" not in payload and b"sk-lunos-client" not in value.encode()


def test_every_worker_with_the_same_master_key_agrees():
    value, _ = sessions().issue("h" * 64, now=NOW)
    assert Sessions(derive_secret(MASTER, "session")).read(value, now=NOW) is not None


def test_session_ids_differ_between_sign_ins():
    a, sa = sessions().issue("h" * 64, now=NOW)
    b, sb = sessions().issue("h" * 64, now=NOW)
    assert a != b and sa.sid != sb.sid


def test_expired_session_is_refused():
    value, _ = sessions(lifetime=60).issue("h" * 64, now=NOW)
    assert sessions().read(value, now=NOW + 59) is not None
    assert sessions().read(value, now=NOW + 60) is None
    assert sessions().read(value, now=NOW + 10_000) is None


def test_tampered_payload_is_refused():
    value, _ = sessions().issue(hash_key("sk-lunos-client"), now=NOW)
    signature = value.split(".")[1]
    forged = orjson.dumps({"h": hash_key(MASTER), "s": "x", "e": int(NOW + 3600)})
    forged_b64 = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    assert sessions().read(f"{forged_b64}.{signature}", now=NOW) is None
    # extending the expiry is tampering too
    longer = orjson.dumps({"h": hash_key("sk-lunos-client"), "s": "x", "e": int(NOW + 10**6)})
    longer_b64 = base64.urlsafe_b64encode(longer).decode().rstrip("=")
    assert sessions().read(f"{longer_b64}.{signature}", now=NOW) is None


def test_tampered_signature_and_other_secret_are_refused():
    value, _ = sessions().issue("h" * 64, now=NOW)
    payload, signature = value.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert sessions().read(f"{payload}.{flipped}", now=NOW) is None
    assert sessions(master="sk-lunos-another-master").read(value, now=NOW) is None
    assert Sessions(derive_secret(MASTER, "csrf")).read(value, now=NOW) is None


def test_malformed_values_are_refused():
    s = sessions()
    for value in (None, "", "abc", "a.b.c", ".", "é.é", "bm90anNvbg.xyz"):
        assert s.read(value, now=NOW) is None
    # a correctly signed payload that is not the expected JSON
    signed = s._sign(b"bm90anNvbg")
    assert s.read(f"bm90anNvbg.{signed}", now=NOW) is None


def test_principal_is_looked_up_again_and_revocation_ends_it():
    auth = Authenticator(MASTER)
    client = Principal("key_1", "client")
    auth.replace_keys({hash_key("sk-lunos-client"): client})
    assert principal_for(auth, hash_key(MASTER)).is_master
    assert principal_for(auth, hash_key("sk-lunos-client")) is client
    auth.replace_keys({})  # the key was revoked and the table refreshed
    assert principal_for(auth, hash_key("sk-lunos-client")) is None
    assert principal_for(auth, "0" * 64) is None


def test_expired_key_ends_its_session():
    auth = Authenticator(MASTER)
    auth.replace_keys({"h" * 64: Principal("key_1", "client", expires_at=NOW + 5)})
    assert principal_for(auth, "h" * 64, now=NOW) is not None
    assert principal_for(auth, "h" * 64, now=NOW + 5) is None


def test_cookie_header_attributes():
    name, value = cookie_header(COOKIE, "v.s", secure=False, max_age=60)
    assert name == "set-cookie"
    parts = value.split("; ")
    assert parts[0] == f"{COOKIE}=v.s"
    assert {"HttpOnly", "Path=/dashboard", "Max-Age=60", "SameSite=Lax"} <= set(parts)
    assert "Secure" not in parts
    _, secure = cookie_header(COOKIE, "v", secure=True, max_age=0, same_site="Strict")
    assert "Secure" in secure.split("; ") and "SameSite=Strict" in secure.split("; ")


def test_read_cookie():
    header = b"a=1; lunos_session=abc.def; other=x"
    assert read_cookie(header, COOKIE) == "abc.def"
    assert read_cookie(header, "missing") is None
    assert read_cookie(None, COOKIE) is None
    assert read_cookie(b"lunos_session=old; lunos_session=new", COOKIE) == "new"
    assert read_cookie(b"xlunos_session=no", COOKIE) is None

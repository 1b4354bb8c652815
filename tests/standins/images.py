"""A local HTTPS file server for image URLs, with a self-signed certificate for `localhost`.

The gateway under test trusts the certificate through `SSL_CERT_FILE`, so its guarded fetch
does a real TLS handshake and certificate check, as it would against a public host.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from pathlib import Path

from .harness import ServerThread, read_body

# A 1x1 transparent PNG.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def make_cert(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "localhost.pem"
    key_path = directory / "localhost.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class ImageServer:
    """Serves `files` (path -> (content type, bytes)); `/redirect?to=URL` answers 302.

    Every request is recorded in `hits`, so a test can prove that nothing was fetched.
    """

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {"/pixel.png": ("image/png", PNG_1X1)}
        self.hits: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        path = scope["path"]
        query = scope.get("query_string", b"").decode()
        self.hits.append(path + ("?" + query if query else ""))
        if path == "/redirect" and query.startswith("to="):
            from urllib.parse import unquote

            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", unquote(query[3:]).encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/big":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"image/png")]})
            for _ in range(64):
                await send({"type": "http.response.body", "body": b"\0" * 65536, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/slow":
            import asyncio

            await asyncio.sleep(30)
        found = self.files.get(path)
        if found is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        content_type, body = found
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type.encode())]})
        await send({"type": "http.response.body", "body": body})


def start_https(app, directory: Path) -> tuple[ServerThread, Path]:
    cert, key = make_cert(directory)
    server = ServerThread(app, ssl_certfile=str(cert), ssl_keyfile=str(key)).start()
    server.url = server.url.replace("http://127.0.0.1", "https://localhost")
    return server, cert

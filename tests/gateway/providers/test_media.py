"""The media routes' sans-IO pieces: multipart parsing and the model rename, Gemini's image
request and answer, trace summaries."""

from __future__ import annotations

import base64
import hashlib

import httpx
import orjson
import pytest

from lunos.gateway.catalog import Catalog
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.google.images import image_request, parse_images
from lunos.gateway.providers.media import (
    MediaRequest,
    boundary_of,
    form_parts,
    media_summary,
    rename_multipart_model,
)
from lunos.gateway.traces import without_media

AUDIO = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"


def multipart() -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", data={"model": "openai/whisper-1", "language": "en"},
                            files={"file": ("a.wav", AUDIO, "audio/wav")})
    return request.read(), request.headers["content-type"]


def test_form_parts_are_offsets_into_the_body():
    raw, kind = multipart()
    parts = {p.name: p for p in form_parts(raw, boundary_of(kind))}
    assert raw[parts["model"].start:parts["model"].end] == b"openai/whisper-1"
    upload = parts["file"]
    assert upload.filename == "a.wav" and upload.content_type == "audio/wav"
    assert raw[upload.start:upload.end] == AUDIO


def test_rename_changes_only_the_model_value():
    raw, kind = multipart()
    renamed = rename_multipart_model(raw, kind, "whisper-1")
    assert renamed == raw.replace(b"openai/whisper-1", b"whisper-1", 1)
    parts = {p.name: p for p in form_parts(renamed, boundary_of(kind))}
    assert renamed[parts["file"].start:parts["file"].end] == AUDIO


def test_a_broken_form_is_none():
    raw, kind = multipart()
    assert form_parts(raw[:len(raw) // 2], boundary_of(kind)) is None
    assert boundary_of("application/json") is None


def _request(body: dict, model: str = "google/gemini-2.5-flash-image") -> MediaRequest:
    info = Catalog.load().get(model)
    return MediaRequest("images", body, model, "google", model.split("/", 1)[1], info)


def test_gemini_image_request():
    up = image_request(_request({"prompt": "a fox", "size": "1024x1536", "n": 2}), "http://g", [])
    assert up.url == "http://g/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert orjson.loads(up.body) == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "2:3"},
                             "candidateCount": 2}}
    with pytest.raises(GatewayError) as caught:
        image_request(_request({"prompt": "x", "style": "vivid"}), "http://g", [])
    assert caught.value.param == "style"


def test_gemini_image_answer():
    png = base64.b64encode(b"\x89PNG...").decode()
    raw = orjson.dumps({"candidates": [{"content": {"parts": [
        {"text": "A fox.", "thought": True}, {"text": "Here it is"},
        {"inlineData": {"mimeType": "image/png", "data": png}}]}}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1290}})
    items, usage = parse_images(raw, "google")
    assert items == [{"b64_json": png, "mime_type": "image/png", "revised_prompt": "Here it is"}]
    assert usage["prompt_tokens"] == 3 and usage["completion_tokens"] == 1290
    with pytest.raises(GatewayError) as caught:
        parse_images(orjson.dumps({"promptFeedback": {"blockReason": "SAFETY"}}), "google")
    assert caught.value.status == 502 and "SAFETY" in caught.value.message


def test_traces_keep_digests_of_file_and_audio_parts():
    pdf = b"%PDF-1.4 tiny"
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}},
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"RIFF").decode(), "format": "wav"}}]}]}
    kept = without_media(orjson.dumps(body))
    parts = kept["messages"][0]["content"]
    assert parts[0]["file"]["file_data"] == media_summary(pdf, "application/pdf")
    assert parts[0]["file"]["file_data"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert parts[1]["input_audio"]["data"] == {"bytes": 4, "sha256": hashlib.sha256(b"RIFF").hexdigest()}
    plain = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert without_media(plain) is plain


def test_dashboard_shows_media_by_size_and_digest():
    from lunos.gateway.dashboard.trace import response_view

    view = response_view({"content": "1 image(s)", "media": [
        {"bytes": 10, "sha256": "ab" * 32}, {"url": "https://images.example/x.png"}]})
    assert view["media"] == [f"10 bytes, sha256 {'ab' * 32}", "https://images.example/x.png"]

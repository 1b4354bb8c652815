"""The media routes (SPEC §9.4) through the real gateway process, called with the official
`openai` SDK: images on OpenAI and Gemini image models, speech, transcription, legacy
completions streamed and not, chat `file` and `input_audio` parts on Anthropic and Gemini,
the catalog's modality filter, the 400s, and the history rows (endpoint, usage, cost,
traces with digests instead of media bytes). Stand-ins: tests/standins/media_api.py and
the strict Anthropic and Gemini stand-ins."""

from __future__ import annotations

import base64
import hashlib
import io

import httpx
import openai
import pytest

from tests.gateway.test_history_e2e import wait_for_row
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.anthropic_api import AnthropicStandIn
from tests.standins.harness import ServerThread
from tests.standins.media_api import PNG_MAGIC, GeminiMediaStandIn, OpenAIMediaStandIn, wav

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class Upstreams:
    def __init__(self) -> None:
        self.openai = OpenAIMediaStandIn("sk-openai-test")
        self.gemini = GeminiMediaStandIn("gm-test")
        self.anthropic = AnthropicStandIn("sk-ant-test")
        self.servers = [ServerThread(s).start() for s in (self.openai, self.gemini, self.anthropic)]

    def env(self) -> dict[str, str]:
        openai_url, gemini_url, anthropic_url = (s.url for s in self.servers)
        return {"LUNOS_MASTER_KEY": MASTER_KEY, "LUNOS_BREAKER_THRESHOLD": "1000000",
                "OPENAI_BASE_URL": openai_url + "/v1", "OPENAI_API_KEY": "sk-openai-test",
                "TOGETHER_BASE_URL": openai_url + "/v1", "TOGETHER_API_KEY": "sk-openai-test",
                "GEMINI_BASE_URL": gemini_url, "GEMINI_API_KEY": "gm-test",
                "ANTHROPIC_BASE_URL": anthropic_url, "ANTHROPIC_API_KEY": "sk-ant-test"}

    def reset(self) -> None:
        for stand_in in (self.openai, self.gemini, self.anthropic):
            stand_in.reset()
        self.openai.files.clear()


@pytest.fixture(scope="module")
def stand_ins():
    upstreams = Upstreams()
    yield upstreams
    for server in upstreams.servers:
        server.stop()


@pytest.fixture(scope="module")
def gateway(stand_ins, tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("media"), stand_ins.env()).start()
    yield process
    process.stop()


@pytest.fixture
def client(gateway, stand_ins):
    stand_ins.reset()
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def row_of(gateway, response) -> dict:
    return wait_for_row(gateway.url, response.headers["x-request-id"])


# ---------------------------------------------------------------- images


def test_openai_image_model_returns_a_png_and_a_priced_images_row(client, gateway, stand_ins):
    raw = client.images.with_raw_response.generate(model="openai/gpt-image-1", prompt="a red fox",
                                                   size="1024x1024", extra_body={"observability": True})
    result = raw.parse()
    image = base64.b64decode(result.data[0].b64_json)
    assert image.startswith(PNG_MAGIC)
    sent = stand_ins.openai.last
    assert sent.path == "/v1/images/generations"
    assert sent.json == {"model": "gpt-image-1", "prompt": "a red fox", "size": "1024x1024"}
    row = row_of(gateway, raw)
    assert row["endpoint"] == "images" and row["model"] == "openai/gpt-image-1" and row["status"] == 200
    assert row["usage"]["prompt_tokens"] == 3 and row["usage"]["completion_tokens"] == 1056
    assert row["usage"]["cost"] == pytest.approx((3 * 5.0 + 1056 * 40.0) / 1e6)
    # The trace keeps the prompt, and of the image only its size and digest.
    assert row["request"]["params"]["prompt"] == "a red fox"
    media = row["response"]["media"][0]
    assert media == {"bytes": len(image), "sha256": hashlib.sha256(image).hexdigest()}
    assert result.data[0].b64_json not in str(row)


def test_gemini_image_model_returns_a_png_as_b64_json(client, gateway, stand_ins):
    raw = client.images.with_raw_response.generate(model="google/gemini-2.5-flash-image",
                                                   prompt="a lighthouse at dusk", size="1792x1024",
                                                   response_format="b64_json")
    result = raw.parse()
    assert base64.b64decode(result.data[0].b64_json).startswith(PNG_MAGIC)
    sent = stand_ins.gemini.last
    assert sent.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert sent.json["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"],
                                             "imageConfig": {"aspectRatio": "16:9"}}
    assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}]
    row = row_of(gateway, raw)
    assert row["endpoint"] == "images" and row["provider"] == "google"
    assert row["usage"]["completion_tokens"] == 1290
    assert row["usage"]["cost"] == pytest.approx((4 * 0.3 + 1290 * 30.0) / 1e6)


def test_gemini_image_as_url_is_a_data_url(client):
    result = client.images.generate(model="google/gemini-2.5-flash-image", prompt="a cat",
                                    response_format="url")
    url = result.data[0].url
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.partition(",")[2]).startswith(PNG_MAGIC)


def test_dalle_url_and_per_image_price(client, gateway, stand_ins):
    raw = client.images.with_raw_response.generate(model="openai/dall-e-3", prompt="a boat")
    result = raw.parse()
    assert result.data[0].url.startswith("https://images.example/")
    assert row_of(gateway, raw)["usage"]["cost"] == pytest.approx(0.04)


def test_openai_compatible_provider_with_the_route(client, stand_ins):
    result = client.images.generate(model="together/gpt-image-1", prompt="a tree")
    assert base64.b64decode(result.data[0].b64_json).startswith(PNG_MAGIC)
    assert stand_ins.openai.last.json["model"] == "gpt-image-1"


@pytest.mark.parametrize("body, param", [
    ({"model": "openai/gpt-image-1"}, "prompt"),
    ({"model": "openai/gpt-image-1", "prompt": ""}, "prompt"),
    ({"model": "openai/gpt-image-1", "prompt": "x", "size": "999x3"}, "size"),
    ({"model": "openai/gpt-image-1", "prompt": "x", "response_format": "gif"}, "response_format"),
    ({"model": "openai/gpt-image-1", "prompt": "x", "n": 0}, "n"),
    ({"prompt": "x"}, "model"),
    ({"model": "google/gemini-2.5-flash-image", "prompt": "x", "quality": "hd"}, "quality"),
    ({"model": "anthropic/claude-sonnet-4-5", "prompt": "x"}, "model"),
])
def test_bad_image_requests_are_400s_naming_the_param(gateway, stand_ins, body, param):
    stand_ins.reset()
    r = httpx.post(gateway.url + "/v1/images/generations", headers=MASTER, json=body, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert not stand_ins.openai.requests
    row = wait_for_row(gateway.url, r.headers["x-request-id"])
    assert row["endpoint"] == "images" and row["status"] == 400


# ---------------------------------------------------------------- speech


def test_speech_returns_wav_bytes_streamed_through(client, gateway, stand_ins):
    with client.audio.speech.with_streaming_response.create(
            model="openai/tts-1", voice="alloy", input="Hello from Lunos", response_format="wav") as raw:
        audio = raw.read()
        request_id = raw.headers["x-request-id"]
        assert raw.headers["content-type"] == "audio/wav"
    assert audio == wav("Hello from Lunos")
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    assert stand_ins.openai.last.json == {"model": "tts-1", "voice": "alloy", "input": "Hello from Lunos",
                                          "response_format": "wav"}
    row = wait_for_row(gateway.url, request_id)
    assert row["endpoint"] == "audio" and row["status"] == 200
    assert row["usage"]["cost"] == pytest.approx(len("Hello from Lunos") * 15.0 / 1e6)


def test_speech_bad_format_and_missing_voice(gateway):
    for body, param in (({"model": "openai/tts-1", "input": "x", "voice": "alloy", "response_format": "ogg"},
                         "response_format"),
                        ({"model": "openai/tts-1", "input": "x"}, "voice"),
                        ({"model": "openai/tts-1", "voice": "alloy", "input": "x", "speed": 9}, "speed")):
        r = httpx.post(gateway.url + "/v1/audio/speech", headers=MASTER, json=body, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_speech_on_anthropic_names_the_missing_route(gateway):
    r = httpx.post(gateway.url + "/v1/audio/speech", headers=MASTER, timeout=10,
                   json={"model": "anthropic/claude-sonnet-4-5", "input": "x", "voice": "alloy"})
    assert r.status_code == 400 and "text-to-speech" in r.json()["error"]["message"]


# ---------------------------------------------------------------- transcriptions


def test_transcription_passes_the_file_through(client, gateway, stand_ins):
    audio = wav("a fairly long sentence to make a longer file " * 4)
    raw = client.audio.transcriptions.with_raw_response.create(
        model="openai/whisper-1", file=("speech.wav", io.BytesIO(audio), "audio/wav"),
        extra_headers={"x-lunos-observability": "true"})
    result = raw.parse()
    digest = hashlib.sha256(audio).hexdigest()
    assert result.text == f"Transcript of {len(audio)} bytes, sha256 {digest}"
    assert stand_ins.openai.files[-1]["bytes"] == audio
    assert stand_ins.openai.files[-1]["filename"] == "speech.wav"
    row = row_of(gateway, raw)
    assert row["endpoint"] == "audio" and row["model"] == "openai/whisper-1"
    assert row["usage"]["cost"] == pytest.approx(12 / 60 * 0.006)
    upload = row["request"]["params"]["file"]
    assert upload["sha256"] == digest and upload["bytes"] == len(audio) and upload["filename"] == "speech.wav"
    assert base64.b64encode(audio[:64]).decode() not in str(row)


def test_transcription_as_text_and_token_usage(client, stand_ins):
    text = client.audio.transcriptions.create(model="openai/gpt-4o-transcribe", response_format="text",
                                              file=("a.wav", wav("hi"), "audio/wav"))
    assert str(text).startswith("Transcript of")


def test_transcription_streamed_from_openai_and_from_gemini(client, gateway, stand_ins):
    audio = wav("stream this sentence please")
    stream = client.audio.transcriptions.create(model="openai/gpt-4o-transcribe", stream=True,
                                                file=("s.wav", audio, "audio/wav"),
                                                extra_headers={"x-lunos-observability": "true"})
    events = list(stream)
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    [done] = [e for e in events if e.type == "transcript.text.done"]
    digest = hashlib.sha256(audio).hexdigest()
    assert len(deltas) > 3 and "".join(deltas) == done.text == f"Transcript of {len(audio)} bytes, sha256 {digest}"
    assert done.usage.input_tokens == 60 and done.usage.output_tokens == 20  # as OpenAI sent it
    assert stand_ins.openai.files[-1]["bytes"] == audio
    row = wait_for_row(gateway.url, stream.response.headers["x-request-id"])
    assert row["endpoint"] == "audio" and row["stream"] is True
    assert (row["usage"]["prompt_tokens"], row["usage"]["completion_tokens"]) == (60, 20)
    assert row["usage"]["cost"] > 0 and row["response"]["content"] == done.text
    # Gemini answers whole: the same two events, the transcript in one delta
    events = list(client.audio.transcriptions.create(model="google/gemini-2.5-flash", stream=True,
                                                     file=("g.wav", wav("gemini hears this"), "audio/wav")))
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[0].delta == events[1].text and events[1].text
    # whisper-1 does not stream: OpenAI's 400 comes back
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="openai/whisper-1", stream=True,
                                           file=("w.wav", audio, "audio/wav"))


def test_transcription_without_file_is_a_400(gateway):
    r = httpx.post(gateway.url + "/v1/audio/transcriptions", headers=MASTER, timeout=10,
                   files={"model": (None, "openai/whisper-1")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = httpx.post(gateway.url + "/v1/audio/transcriptions", headers=MASTER, timeout=10,
                   json={"model": "openai/whisper-1"})
    assert r.status_code == 400


# ---------------------------------------------------------------- completions


def test_completions_json(client, gateway, stand_ins):
    raw = client.completions.with_raw_response.create(model="openai/gpt-3.5-turbo-instruct",
                                                      prompt="Say this is a test", max_tokens=16)
    result = raw.parse()
    assert result.choices[0].text == "completed: Say this is a test"
    assert result.model == "openai/gpt-3.5-turbo-instruct"
    assert stand_ins.openai.last.json == {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test",
                                          "max_tokens": 16}
    row = row_of(gateway, raw)
    assert row["endpoint"] == "completions" and row["usage"]["completion_tokens"] == 6
    assert row["usage"]["cost"] == pytest.approx((5 * 1.5 + 6 * 2.0) / 1e6)


def test_completions_streamed(client, gateway, stand_ins):
    stream = client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="one two",
                                       stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "completed: one two"
    assert all(c.model == "openai/gpt-3.5-turbo-instruct" for c in chunks)
    assert chunks[-1].usage.completion_tokens == 3
    request_id = stream.response.headers["x-request-id"]
    row = wait_for_row(gateway.url, request_id)
    assert row["endpoint"] == "completions" and row["stream"] is True and row["usage"]["prompt_tokens"] == 2
    assert row["usage"]["cost"] > 0
    assert chunks[-1].usage.model_extra["cost"] == pytest.approx(row["usage"]["cost"])  # priced as chat's


def test_completions_on_anthropic_name_the_missing_route(gateway):
    r = httpx.post(gateway.url + "/v1/completions", headers=MASTER, timeout=10,
                   json={"model": "anthropic/claude-sonnet-4-5", "prompt": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    assert "text completions" in r.json()["error"]["message"]
    r = httpx.post(gateway.url + "/v1/completions", headers=MASTER, timeout=10,
                   json={"model": "openai/gpt-3.5-turbo-instruct"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


# ---------------------------------------------------------------- chat parts


def _pdf_part() -> dict:
    return {"type": "file", "file": {"filename": "report.pdf",
                                     "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode()}}


def test_pdf_file_part_reaches_anthropic_as_a_document(client, gateway, stand_ins):
    raw = client.chat.completions.with_raw_response.create(
        model="anthropic/claude-sonnet-4-5", max_tokens=100, extra_body={"observability": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": "Summarise this"}, _pdf_part()]}])
    assert raw.parse().choices[0].message.content
    blocks = stand_ins.anthropic.last.json["messages"][0]["content"]
    assert blocks[1] == {"type": "document", "title": "report.pdf", "source": {
        "type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()}}
    # The trace keeps the document's size and digest, not its bytes.
    row = row_of(gateway, raw)
    kept = row["request"]["messages"][0]["content"][1]["file"]["file_data"]
    assert kept == {"bytes": len(PDF), "sha256": hashlib.sha256(PDF).hexdigest(),
                    "content_type": "application/pdf"}
    assert base64.b64encode(PDF).decode()[:40] not in str(row)


def test_pdf_file_part_reaches_gemini_inline(client, stand_ins):
    result = client.chat.completions.create(
        model="google/gemini-2.5-flash",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Summarise this"}, _pdf_part()]}])
    assert result.choices[0].message.content
    parts = stand_ins.gemini.last.json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(PDF).decode()}}


def test_input_audio_reaches_gemini_and_is_a_400_on_anthropic(client, stand_ins):
    audio = base64.b64encode(wav("hello")).decode()
    content = [{"type": "text", "text": "What is said here?"},
               {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]
    result = client.chat.completions.create(model="google/gemini-2.5-flash",
                                            messages=[{"role": "user", "content": content}])
    assert result.choices[0].message.content
    parts = stand_ins.gemini.last.json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "audio/wav", "data": audio}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="anthropic/claude-sonnet-4-5", max_tokens=50,
                                       messages=[{"role": "user", "content": content}])
    error = caught.value.body
    assert error["param"] == "messages[0].content[1]" and "input_audio" in error["message"]
    assert not stand_ins.anthropic.requests


@pytest.mark.parametrize("part, param", [
    ({"type": "file", "file": {}}, "messages[0].content[0].file"),
    ({"type": "file", "file": {"file_data": "not a data url"}}, "messages[0].content[0].file.file_data"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "ogg"}},
     "messages[0].content[0].input_audio.format"),
    ({"type": "input_audio", "input_audio": {"data": "%%%", "format": "wav"}},
     "messages[0].content[0].input_audio.data"),
])
def test_bad_file_and_audio_parts_are_400s(gateway, part, param):
    r = httpx.post(gateway.url + "/v1/chat/completions", headers=MASTER, timeout=10,
                   json={"model": "google/gemini-2.5-flash", "messages": [{"role": "user", "content": [part]}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_file_id_is_refused_where_the_provider_has_no_files_api(gateway):
    r = httpx.post(gateway.url + "/v1/chat/completions", headers=MASTER, timeout=10, json={
        "model": "anthropic/claude-sonnet-4-5", "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content[0].file.file_id"


# ---------------------------------------------------------------- catalog


def test_models_filter_by_modality(client, gateway):
    images = {m.id for m in client.models.list(extra_query={"output": "image"})}
    assert {"openai/gpt-image-1", "openai/dall-e-3", "google/gemini-2.5-flash-image"} <= images
    assert "openai/gpt-4o-mini" not in images
    both = httpx.get(gateway.url + "/v1/models", params={"input": "text,image", "output": "image"}).json()["data"]
    assert {m["id"] for m in both} == {"openai/gpt-image-1", "google/gemini-2.5-flash-image"}
    assert all("image" in m["output_modalities"] for m in both)
    hearing = {m["id"] for m in httpx.get(gateway.url + "/v1/models", params={"input": "audio"}).json()["data"]}
    assert "openai/whisper-1" in hearing and "google/gemini-2.5-flash" in hearing
    assert not any(m.startswith("anthropic/") for m in hearing)
    pdfs = {m["id"] for m in httpx.get(gateway.url + "/v1/models", params={"input": "file"}).json()["data"]}
    assert "anthropic/claude-sonnet-4-5" in pdfs and "google/gemini-2.5-flash" in pdfs
    priced = httpx.get(gateway.url + "/v1/models/openai/dall-e-3").json()
    assert priced["pricing"]["image"] == 0.04
    r = httpx.get(gateway.url + "/v1/models", params={"output": "smell"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "output"


# ---------------------------------------------------------------- Lunos SDK and CLI


def test_lunos_sdk_images_speech_and_transcription(gateway, stand_ins, tmp_path):
    import lunos

    stand_ins.reset()
    with lunos.Lunos(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0) as client:
        assert client.images is client.images and client.audio.speech is client.audio.speech
        result = client.images.generate(model="google/gemini-2.5-flash-image", prompt="a kite")
        assert isinstance(result, lunos.ImagesResponse) and result.provider == "google"
        assert result.data[0].bytes().startswith(PNG_MAGIC) and result.usage.cost > 0
        with client.audio.speech.create(model="openai/tts-1", voice="alloy", input="Hi there",
                                        response_format="wav") as speech:
            assert speech.headers["content-type"] == "audio/wav"
            written = speech.write_to_file(tmp_path / "hi.wav")
        assert (tmp_path / "hi.wav").read_bytes() == wav("Hi there") and written == len(wav("Hi there"))
        (tmp_path / "hi.wav").write_bytes(wav("Hi there"))
        transcript = client.audio.transcriptions.create(model="openai/whisper-1", file=tmp_path / "hi.wav",
                                                        language="en")
        assert isinstance(transcript, lunos.Transcription)
        assert transcript.text.endswith(hashlib.sha256(wav("Hi there")).hexdigest())
        assert stand_ins.openai.files[-1]["filename"] == "hi.wav"
        with pytest.raises(lunos.BadRequestError) as caught:
            client.images.generate(model="openai/gpt-image-1", prompt="x", size="3x3")
        assert caught.value.param == "size"


async def test_async_lunos_sdk_images_and_speech(gateway, stand_ins):
    import lunos

    async with lunos.AsyncLunos(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0) as client:
        result = await client.images.generate(model="openai/gpt-image-1", prompt="a boat")
        assert result.data[0].bytes().startswith(PNG_MAGIC)
        speech = await client.audio.speech.create(model="openai/tts-1", voice="alloy", input="Yo",
                                                  response_format="wav")
        assert await speech.read() == wav("Yo")


def test_lunos_sdk_completions_json_and_streamed(gateway, stand_ins):
    import lunos

    stand_ins.reset()
    with lunos.Lunos(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0) as client:
        result = client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="Say this is a test",
                                           max_tokens=16, temperature=None, observability=True)
        assert isinstance(result, lunos.Completion) and result.object == "text_completion"
        assert result.choices[0].text == "completed: Say this is a test"
        assert result.choices[0].finish_reason == "stop"
        assert (result.model, result.provider) == ("openai/gpt-3.5-turbo-instruct", "openai")
        assert result.usage.completion_tokens == 6
        assert result.usage.cost == pytest.approx((5 * 1.5 + 6 * 2.0) / 1e6)
        assert stand_ins.openai.last.json == {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test",
                                              "max_tokens": 16}

        with client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="one two", stream=True,
                                       stream_options={"include_usage": True}, observability=True) as stream:
            chunks = list(stream)
        assert all(isinstance(c, lunos.Completion) for c in chunks)
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "completed: one two"
        assert chunks[0].provider == "openai"
        assert all(c.model == "openai/gpt-3.5-turbo-instruct" for c in chunks)
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
        row = wait_for_row(gateway.url, stream.request_id)
        assert row["endpoint"] == "completions" and row["stream"] is True and row["usage"]["cost"] > 0
        assert chunks[-1].usage.cost == pytest.approx(row["usage"]["cost"])
        assert row["response"]["content"] == "completed: one two"

        with pytest.raises(lunos.BadRequestError) as caught:
            client.completions.create(model="anthropic/claude-sonnet-4-5", prompt="x")
        assert caught.value.param == "model" and caught.value.code == "unsupported_endpoint"


async def test_async_lunos_sdk_completions(gateway, stand_ins):
    import lunos

    stand_ins.reset()
    async with lunos.AsyncLunos(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0) as client:
        result = await client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="a b")
        assert result.choices[0].text == "completed: a b" and result.usage.cost > 0
        stream = await client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="a b c",
                                                 stream=True)
        chunks = [chunk async for chunk in stream]
        assert "".join(c.choices[0].text for c in chunks) == "completed: a b c"
        assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


def test_cli_image_writes_the_png(gateway, stand_ins, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("LUNOS_")},
                   "PYTHONPATH": src, "LUNOS_BASE_URL": gateway.url, "LUNOS_API_KEY": MASTER_KEY}
    out = tmp_path / "out.png"
    result = subprocess.run([sys.executable, "-m", "lunos.cli", "image", "a red fox", "-o", str(out),
                             "--model", "google/gemini-2.5-flash-image"],
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert f"saved {out}" in result.stdout
    assert "generating an image with google/gemini-2.5-flash-image" in result.stderr
    bad = subprocess.run([sys.executable, "-m", "lunos.cli", "image", "x", "-o", str(out), "--size", "1x1"],
                         env=environment, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "param: size" in bad.stderr


def test_messages_and_responses_doors_take_documents_in_their_own_shapes(gateway, stand_ins):
    stand_ins.reset()
    data = base64.b64encode(PDF).decode()
    r = httpx.post(gateway.url + "/v1/messages", headers=MASTER, timeout=10, json={
        "model": "google/gemini-2.5-flash", "max_tokens": 100, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}},
            {"type": "text", "text": "Summarise"}]}]})
    assert r.status_code == 200, r.text
    parts = stand_ins.gemini.last.json["contents"][0]["parts"]
    assert {"inlineData": {"mimeType": "application/pdf", "data": data}} in parts
    r = httpx.post(gateway.url + "/v1/responses", headers=MASTER, timeout=10, json={
        "model": "anthropic/claude-sonnet-4-5", "store": False, "input": [{"role": "user", "content": [
            {"type": "input_file", "filename": "r.pdf", "file_data": f"data:application/pdf;base64,{data}"},
            {"type": "input_text", "text": "Summarise"}]}]})
    assert r.status_code == 200, r.text
    blocks = stand_ins.anthropic.last.json["messages"][0]["content"]
    assert {"type": "document", "title": "r.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": data}} in blocks


# ---------------------------------------------------------------- keys, fallbacks, retries


def test_keys_and_fallbacks_apply_to_the_media_routes(gateway, stand_ins):
    from tests.gateway.test_history_e2e import make_key

    stand_ins.reset()
    key = make_key(gateway.url, "images-only", allowed_models=["openai/gpt-image-1"])["key"]
    headers = {"authorization": f"Bearer {key}"}
    r = httpx.post(gateway.url + "/v1/audio/speech", headers=headers, timeout=10,
                   json={"model": "openai/tts-1", "input": "x", "voice": "alloy"})
    assert r.status_code == 403 and not stand_ins.openai.requests
    # The first model does not exist upstream (404): the fallback answers, the row says so.
    r = httpx.post(gateway.url + "/v1/images/generations", headers=MASTER, timeout=10,
                   json={"model": "openai/gpt-image-9", "prompt": "a fox", "models": ["openai/gpt-image-1"]})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "openai/gpt-image-1"
    row = wait_for_row(gateway.url, r.headers["x-request-id"])
    assert [a["model"] for a in row["attempts"]] == ["openai/gpt-image-9", "openai/gpt-image-1"]
    assert row["endpoint"] == "images" and row["model"] == "openai/gpt-image-1"
    # A provider error before the first audio byte is retried: the second try answers.
    stand_ins.openai.scripted.append(_overloaded)
    r = httpx.post(gateway.url + "/v1/audio/speech", headers=MASTER, timeout=10,
                   json={"model": "openai/tts-1", "input": "again", "voice": "alloy", "response_format": "wav"})
    assert r.status_code == 200 and r.content == wav("again")
    assert len(stand_ins.openai.requests) == 4


async def _overloaded(rec, send):
    from tests.standins.harness import send_json

    await send_json(send, 503, {"error": {"message": "overloaded", "type": "server_error"}})


def test_transcription_on_gemini_sends_the_audio_inline(client, gateway, stand_ins):
    audio = wav("gemini hears this")
    raw = client.audio.transcriptions.with_raw_response.create(
        model="google/gemini-2.5-flash", file=("clip.wav", audio, "audio/wav"), language="en")
    result = raw.parse()
    assert result.text  # the model's answer to the instruction
    sent = stand_ins.gemini.last
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    parts = sent.json["contents"][0]["parts"]
    assert parts[0]["text"].startswith("Transcribe this audio") and "en" in parts[0]["text"]
    assert parts[1] == {"inlineData": {"mimeType": "audio/wav", "data": base64.b64encode(audio).decode()}}
    row = row_of(gateway, raw)
    assert row["endpoint"] == "audio" and row["provider"] == "google" and row["usage"]["prompt_tokens"] > 0
    text = client.audio.transcriptions.create(model="google/gemini-2.5-flash", response_format="text",
                                              file=("clip.wav", audio, "audio/wav"))
    assert isinstance(text, str) and text == result.text
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="google/gemini-2.5-flash", response_format="srt",
                                           file=("clip.wav", audio, "audio/wav"))
    assert caught.value.body["param"] == "response_format"


def test_speech_on_gemini_tts_is_wav(client, gateway, stand_ins):
    raw = client.audio.speech.with_raw_response.create(model="google/gemini-2.5-flash-preview-tts",
                                                       voice="Kore", input="Say hi", response_format="wav")
    audio = raw.content
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" and audio[44:] == wav("Say hi", 24000)[44:]
    assert int.from_bytes(audio[24:28], "little") == 24000  # the sample rate Gemini named
    config = stand_ins.gemini.last.json["generationConfig"]
    assert config == {"responseModalities": ["AUDIO"],
                      "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}}
    row = wait_for_row(gateway.url, raw.headers["x-request-id"])
    assert row["endpoint"] == "audio" and row["provider"] == "google" and row["usage"]["completion_tokens"] > 0
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="google/gemini-2.5-flash-preview-tts", voice="Kore", input="x")
    assert caught.value.body["param"] == "response_format"  # mp3 by default: Gemini gives PCM


def test_speech_on_gemini_tts_takes_openai_voice_names_and_any_case(client, stand_ins):
    sent = []
    for voice in ("alloy", "onyx", "puck", "SULAFAT"):
        audio = client.audio.speech.create(model="google/gemini-2.5-flash-preview-tts", voice=voice,
                                           input="Say hi", response_format="wav").content
        assert audio[:4] == b"RIFF"
        config = stand_ins.gemini.last.json["generationConfig"]
        sent.append(config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"])
    assert sent == ["Kore", "Orus", "Puck", "Sulafat"]
    with pytest.raises(openai.APIStatusError) as caught:  # a name neither knows: Gemini's answer
        client.audio.speech.create(model="google/gemini-2.5-flash-preview-tts", voice="Nobody",
                                   input="x", response_format="wav")
    assert caught.value.status_code == 400 and "Nobody" in str(caught.value)


def test_completions_stream_usage_is_counted_even_when_not_asked(client, gateway, stand_ins):
    stream = client.completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="a b c", stream=True)
    chunks = list(stream)
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert stand_ins.openai.last.json["stream_options"] == {"include_usage": True}
    row = wait_for_row(gateway.url, stream.response.headers["x-request-id"])
    assert row["usage"]["completion_tokens"] == 4 and row["usage"]["cost"] > 0

"""Stand-ins for the providers' media APIs, strict about what those APIs refuse, recording
what they received (SPEC §9.4):

- OpenAI (`OpenAIMediaStandIn`): `POST /v1/images/generations` (gpt-image-1 answers
  `b64_json` only and refuses `response_format`, as OpenAI's does; dall-e-3 answers a `url`
  unless asked for `b64_json`), `POST /v1/audio/speech` (WAV or MP3 bytes sent in several
  pieces), `POST /v1/audio/transcriptions` (multipart; the transcript names the SHA-256 of
  the file it got, so a test can tell the file arrived whole), `POST /v1/completions`
  (gpt-3.5-turbo-instruct, JSON and SSE, usage with `stream_options.include_usage`).
  Unknown fields are refused ("Unrecognized request argument supplied"), keys checked.
- Gemini (`GeminiMediaStandIn`): the strict Gemini stand-in, plus image models
  (`*-image*`): `generateContent` with `generationConfig.responseModalities` containing
  IMAGE answers an `inlineData` PNG (and a text part when TEXT is asked too); without IMAGE,
  a text answer as a plain model gives.
(Wire shapes from OpenAI's API reference and Gemini's image generation guide.)
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import re
import struct
import time
import zlib

import orjson

from .gemini_api import ROUTE, GeminiStandIn
from .harness import Recorded, Reject, StandInApp, send_json, send_sse

IMAGE_FIELDS = {"model", "prompt", "n", "size", "quality", "style", "response_format", "user",
                "background", "moderation", "output_format", "output_compression"}
SPEECH_FIELDS = {"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"}
TRANSCRIBE_FIELDS = {"model", "file", "language", "prompt", "response_format", "temperature",
                     "timestamp_granularities[]", "include[]", "stream", "chunking_strategy"}
COMPLETION_FIELDS = {"model", "prompt", "suffix", "max_tokens", "temperature", "top_p", "n", "stream",
                     "stream_options", "logprobs", "echo", "stop", "presence_penalty",
                     "frequency_penalty", "best_of", "logit_bias", "user", "seed"}
SPEECH_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "aac": "audio/aac",
                "flac": "audio/flac", "pcm": "audio/pcm"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png(seed: str, side: int = 4) -> bytes:
    """A small, valid PNG whose pixels depend on `seed`."""
    color = hashlib.sha256(seed.encode()).digest()[:3]
    rows = b"".join(b"\x00" + color * side for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def wav(text: str, rate: int = 8000) -> bytes:
    """A valid mono 16-bit WAV file, a little longer for a longer text."""
    frames = b"".join(struct.pack("<h", (i * 37 + len(text)) % 2000 - 1000) for i in range(rate // 10 * (1 + len(text) // 20)))
    return (b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", len(frames)) + frames)


def _error(message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _unknown(body: dict, known: set) -> None:
    extra = sorted(set(body) - known)
    if extra:
        raise Reject(400, _error(f"Unrecognized request argument supplied: {extra[0]}"))


class OpenAIMediaStandIn(StandInApp):
    def __init__(self, api_key: str = "sk-openai-test") -> None:
        super().__init__()
        self.api_key = api_key
        self.files: list[dict] = []  # transcription uploads received: filename, bytes

    async def handle(self, rec: Recorded, send) -> None:
        if rec.headers.get("authorization") != f"Bearer {self.api_key}":
            raise Reject(401, _error("Incorrect API key provided.", code="invalid_api_key"))
        routes = {"/v1/images/generations": self._images, "/v1/audio/speech": self._speech,
                  "/v1/audio/transcriptions": self._transcribe, "/v1/completions": self._complete}
        if rec.method != "POST" or rec.path not in routes:
            raise Reject(404, _error(f"Unknown request URL: {rec.method} {rec.path}", code="unknown_url"))
        await routes[rec.path](rec, send)

    @staticmethod
    def _json(rec: Recorded) -> dict:
        if not rec.headers.get("content-type", "").startswith("application/json") or not isinstance(rec.json, dict):
            raise Reject(400, _error("We could not parse the JSON body of your request."))
        return rec.json

    async def _images(self, rec: Recorded, send) -> None:
        body = self._json(rec)
        _unknown(body, IMAGE_FIELDS)
        model = body.get("model")
        if model not in ("gpt-image-1", "dall-e-3"):
            raise Reject(404, _error(f"The model `{model}` does not exist", code="model_not_found"))
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            raise Reject(400, _error("Missing required parameter: 'prompt'.", "prompt"))
        if model == "gpt-image-1" and "response_format" in body:
            raise Reject(400, _error("Unknown parameter: 'response_format'.", "response_format"))
        n = body.get("n", 1)
        if model == "dall-e-3" and n != 1:
            raise Reject(400, _error("You must provide n=1 for this model.", "n"))
        images = [png(f"{body['prompt']}:{i}") for i in range(n)]
        as_url = model == "dall-e-3" and body.get("response_format", "url") == "url"
        data = [{"url": f"https://images.example/{hashlib.sha256(i).hexdigest()[:16]}.png"} if as_url
                else {"b64_json": base64.b64encode(i).decode()} for i in images]
        answer = {"created": int(time.time()), "data": data}
        if model == "gpt-image-1":
            words = len(body["prompt"].split())
            answer["usage"] = {"input_tokens": words, "output_tokens": 1056 * n,
                               "total_tokens": words + 1056 * n,
                               "input_tokens_details": {"text_tokens": words, "image_tokens": 0}}
        await send_json(send, 200, answer)

    async def _speech(self, rec: Recorded, send) -> None:
        body = self._json(rec)
        _unknown(body, SPEECH_FIELDS)
        if body.get("model") not in ("tts-1", "gpt-4o-mini-tts"):
            raise Reject(404, _error(f"The model `{body.get('model')}` does not exist", code="model_not_found"))
        for name in ("input", "voice"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise Reject(400, _error(f"Missing required parameter: '{name}'.", name))
        kind = body.get("response_format", "mp3")
        if kind not in SPEECH_TYPES:
            raise Reject(400, _error("Invalid value for 'response_format'.", "response_format"))
        audio = wav(body["input"]) if kind == "wav" else b"ID3" + hashlib.sha256(body["input"].encode()).digest() * 64
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", SPEECH_TYPES[kind].encode())]})
        step = max(len(audio) // 4, 1)
        for start in range(0, len(audio), step):  # in pieces, as a real stream of audio
            await send({"type": "http.response.body", "body": audio[start:start + step], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _transcribe(self, rec: Recorded, send) -> None:
        kind = rec.headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            raise Reject(400, _error("Invalid Content-Type header: expected multipart/form-data."))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + kind.encode() + b"\r\n\r\n" + rec.body)
        fields, upload = {}, None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename() is not None and name == "file":
                upload = {"filename": part.get_filename(), "bytes": part.get_payload(decode=True),
                          "content_type": part.get_content_type()}
            else:
                fields[name] = part.get_payload(decode=True).decode()
        _unknown({**fields, **({"file": 1} if upload else {})}, TRANSCRIBE_FIELDS)
        if fields.get("model") not in ("whisper-1", "gpt-4o-transcribe"):
            raise Reject(404, _error(f"The model `{fields.get('model')}` does not exist", code="model_not_found"))
        if upload is None:
            raise Reject(400, _error("Missing required parameter: 'file'.", "file"))
        if not upload["bytes"].startswith(b"RIFF") and not upload["filename"].endswith((".mp3", ".wav", ".m4a")):
            raise Reject(400, _error("Invalid file format.", "file"))
        self.files.append(upload)
        text = f"Transcript of {len(upload['bytes'])} bytes, sha256 {hashlib.sha256(upload['bytes']).hexdigest()}"
        if fields.get("stream") == "true":
            await self._transcript_events(fields["model"], text, send)
            return
        if fields.get("response_format") == "text":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": text.encode()})
            return
        answer: dict = {"text": text}
        if fields["model"] == "whisper-1":
            answer["usage"] = {"type": "duration", "seconds": 12}
        else:
            answer["usage"] = {"type": "tokens", "input_tokens": 60, "output_tokens": 20, "total_tokens": 80,
                               "input_token_details": {"audio_tokens": 60, "text_tokens": 0}}
        await send_json(send, 200, answer)

    async def _transcript_events(self, model: str, text: str, send) -> None:
        """`stream=true`: `transcript.text.delta` events, a word each, then
        `transcript.text.done` with the whole text and the usage (gpt-4o-transcribe only:
        whisper-1 does not stream)."""
        if model == "whisper-1":
            raise Reject(400, _error("Streaming is not supported for model whisper-1.", "stream"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        words = text.split(" ")
        for i, word in enumerate(words):
            delta = word if i == 0 else " " + word
            event = {"type": "transcript.text.delta", "delta": delta}
            await send({"type": "http.response.body", "more_body": True,
                        "body": b"data: " + orjson.dumps(event) + b"\n\n"})
        done = {"type": "transcript.text.done", "text": text,
                "usage": {"type": "tokens", "input_tokens": 60, "output_tokens": 20, "total_tokens": 80,
                          "input_token_details": {"audio_tokens": 60, "text_tokens": 0}}}
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(done) + b"\n\n"})

    async def _complete(self, rec: Recorded, send) -> None:
        body = self._json(rec)
        _unknown(body, COMPLETION_FIELDS)
        if body.get("model") != "gpt-3.5-turbo-instruct":
            raise Reject(404, _error(f"The model `{body.get('model')}` does not exist", code="model_not_found"))
        prompt = body.get("prompt")
        if prompt is None:
            raise Reject(400, _error("Missing required parameter: 'prompt'.", "prompt"))
        prompt_text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
        words = ["completed:", *prompt_text.split()[:8]]
        usage = {"prompt_tokens": len(prompt_text.split()), "completion_tokens": len(words),
                 "total_tokens": len(prompt_text.split()) + len(words)}
        base = {"id": "cmpl-standin", "object": "text_completion", "created": int(time.time()),
                "model": body["model"]}
        if not body.get("stream"):
            await send_json(send, 200, {**base, "choices": [{"text": " ".join(words), "index": 0,
                                                             "logprobs": None, "finish_reason": "stop"}],
                                        "usage": usage})
            return
        events = [b"data: " + orjson.dumps({**base, "choices": [{"text": (" " if i else "") + word, "index": 0,
                                                                "logprobs": None, "finish_reason": None}]}) + b"\n\n"
                  for i, word in enumerate(words)]
        events.append(b"data: " + orjson.dumps({**base, "choices": [{"text": "", "index": 0, "logprobs": None,
                                                                      "finish_reason": "stop"}]}) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        await send_sse(send, events)


IMAGE_MODEL = re.compile(r"gemini-[0-9.]+-flash-image.*")
TTS_MODEL = re.compile(r"gemini-[0-9.]+-(flash|pro)-preview-tts")
VOICES = {  # Gemini's prebuilt TTS voices, as its speech generation guide lists them
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe",
    "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi",
    "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird",
    "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat"}
MODALITIES = {"TEXT", "IMAGE", "AUDIO"}


class GeminiMediaStandIn(GeminiStandIn):
    async def handle(self, rec: Recorded, send) -> None:
        route = ROUTE.fullmatch(rec.path)
        if route is not None and route.group(2) == "generateContent" and TTS_MODEL.fullmatch(route.group(1)):
            await self._speak(rec, send, route.group(1))
            return
        if route is None or route.group(2) != "generateContent" or not IMAGE_MODEL.fullmatch(route.group(1)):
            await super().handle(rec, send)
            return
        self._authenticate(rec)
        body = self._checked(route.group(1), rec.json if isinstance(rec.json, dict) else {})
        config = body.get("generationConfig") or {}
        modalities = config.get("responseModalities") or ["TEXT"]
        if not set(modalities) <= MODALITIES:
            raise Reject(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                         f"Invalid value at 'generation_config.response_modalities' ({modalities})"}})
        prompt = " ".join(p.get("text", "") for c in body["contents"] for p in c["parts"])
        candidates = []
        for i in range(config.get("candidateCount") or 1):
            parts = []
            if "TEXT" in modalities:
                parts.append({"text": f"Here is {prompt[:40]}"})
            if "IMAGE" in modalities:
                parts.append({"inlineData": {"mimeType": "image/png",
                                             "data": base64.b64encode(png(f"{prompt}:{i}")).decode()}})
            candidates.append({"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": i})
        words = len(prompt.split())
        await send_json(send, 200, {"candidates": candidates, "modelVersion": route.group(1),
                                    "usageMetadata": {"promptTokenCount": words,
                                                      "candidatesTokenCount": 1290 * len(candidates),
                                                      "totalTokenCount": words + 1290 * len(candidates)}})

    async def _speak(self, rec: Recorded, send, model: str) -> None:
        """A TTS model: AUDIO only, a prebuilt voice it knows; 16-bit PCM at 24 kHz back."""
        self._authenticate(rec)
        body = rec.json if isinstance(rec.json, dict) else {}
        config = body.get("generationConfig") or {}
        if config.get("responseModalities") != ["AUDIO"]:
            raise Reject(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                         "The requested combination of response modalities is not supported by the model."}})
        voice = (((config.get("speechConfig") or {}).get("voiceConfig") or {}).get("prebuiltVoiceConfig") or {}).get("voiceName")
        if voice not in VOICES:
            raise Reject(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                         "message": f"Voice name {voice} is not supported."}})
        text = "".join(p.get("text", "") for c in body.get("contents") or [] for p in c.get("parts") or [])
        pcm = wav(text, 24000)[44:]
        await send_json(send, 200, {"candidates": [{"content": {"role": "model", "parts": [
            {"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": base64.b64encode(pcm).decode()}}]},
            "finishReason": "STOP"}], "modelVersion": model,
            "usageMetadata": {"promptTokenCount": len(text.split()), "candidatesTokenCount": len(pcm) // 960,
                              "totalTokenCount": len(text.split()) + len(pcm) // 960}})

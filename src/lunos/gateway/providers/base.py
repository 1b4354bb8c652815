"""What every provider adapter is, and the parameter-support check they share.

Adapters are sans-IO: they turn a validated `ChatRequest` into an `UpstreamRequest`,
the provider's bytes into OpenAI-shaped dicts, and own one `StreamTranslator` per stream.
They never open a socket; `engine.py` does. Output dicts leave out `id`, `object`,
`created`, `model` and `provider`: the engine stamps those, the same for every provider.

A chunk is `{"choices": [{"index", "delta", "finish_reason"}], "usage"?: {...}}`; a usage-
only chunk has `"choices": []`. A completion is `{"choices": [...], "usage": {...}}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..._sse import ServerSentEvent
from ..errors import GatewayError

if TYPE_CHECKING:
    from ..catalog import ModelInfo


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One upstream endpoint: built-in, preset, or added by the config file."""

    name: str  # the prefix clients use: "anthropic", "groq", "my-vllm"
    kind: str  # which adapter speaks to it: "openai", "anthropic", "google"
    base_url: str
    api_key: str | None = None
    key_required: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class NativeBody:
    """A request in a front door's own wire format (`door`: "messages"), for a provider that
    speaks that format itself: it goes upstream as the client sent it, only `model` renamed
    (DESIGN.md, "Front doors over one engine")."""

    door: str
    body: dict  # without Lunos's own fields
    headers: list[tuple[str, str]] = field(default_factory=list)  # client headers to pass on
    state: dict = field(default_factory=dict)  # what the door and the relay tell each other


@dataclass(slots=True)
class ChatRequest:
    """A validated chat request, ready for an adapter.

    `body` is the client's OpenAI body without Lunos-only fields; `body["model"]` is
    still what the client sent (adapters use `upstream_model`).
    """

    body: dict
    model: str  # as the client named it: "anthropic/claude-sonnet-4-5"
    provider: str
    upstream_model: str  # what goes upstream: "claude-sonnet-4-5"
    model_info: ModelInfo | None = None
    stream: bool = False
    include_usage: bool = False
    native: NativeBody | None = None  # set when the provider answers in the door's own format


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A parameter the chosen provider or model cannot honour, and why."""

    param: str
    message: str


# Parameters that are "not set" at these values, whatever the provider (SPEC §4).
OPENAI_DEFAULTS: Mapping[str, Any] = {
    "n": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "parallel_tool_calls": True,
    "logprobs": False,
}

# Body fields that are structure, not tunable parameters: never "unsupported".
STRUCTURAL = frozenset({"model", "messages", "stream"})


class StreamTranslator(Protocol):
    """One per stream; its state lives here."""

    def feed(self, event: ServerSentEvent) -> Iterable[dict]: ...

    def finish(self) -> Iterable[dict]: ...


class Adapter(Protocol):
    kind: ClassVar[str]
    # OpenAI body parameters this provider's API can honour (at non-default values).
    parameters: ClassVar[frozenset[str]]
    # Whether the provider fetches http(s) image URLs itself; if not, the engine
    # fetches them through the guarded fetch and hands the adapter data URLs.
    fetches_image_urls: ClassVar[bool]
    # Whether the model continues a trailing assistant message (a prefill) rather than
    # answering after it; if not, a stream failover adds an instruction (resume.py).
    continues_prefill: ClassVar[bool]

    config: ProviderConfig

    def check(self, req: ChatRequest) -> list[Unsupported]: ...

    def build_request(self, req: ChatRequest) -> UpstreamRequest: ...

    def parse_response(self, req: ChatRequest, status: int, body: bytes) -> dict: ...

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError: ...

    def stream_translator(self, req: ChatRequest) -> StreamTranslator: ...


class NativeRelay(Protocol):
    """One per pass-through stream: the provider's events re-framed for the client as they
    are (the model renamed), with the usage they report, OpenAI-shaped, in `usage`."""

    usage: dict | None
    started: bool  # output has begun: the engine may no longer retry
    output: Any  # usage.Output when traced, else None

    def feed(self, event: ServerSentEvent) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


class NativeAdapter(Adapter, Protocol):
    """An adapter that also speaks a front door's format (`native_doors`) as it is."""

    native_doors: ClassVar[frozenset[str]]

    def build_native_request(self, req: ChatRequest) -> UpstreamRequest: ...

    def parse_native_response(self, req: ChatRequest, body: bytes) -> tuple[dict, dict | None]: ...

    def native_relay(self, req: ChatRequest, trace: bool = False) -> NativeRelay: ...


# A completion key an adapter sets when the model paused its turn (Anthropic's `pause_turn`)
# for the engine to continue it (resume.py); the engine removes it.
PAUSED_KEY = "lunos_paused"


def speaks(adapter: Adapter, door: str) -> bool:
    """Whether `adapter` takes requests in `door`'s own format."""
    return door in getattr(adapter, "native_doors", ())


def is_set(name: str, value: Any) -> bool:
    """True when a parameter asks for something other than OpenAI's default."""
    if value is None:
        return False
    if name in OPENAI_DEFAULTS:
        return value != OPENAI_DEFAULTS[name]
    if name == "stream_options":
        return bool(value)
    return True


def check_parameters(req: ChatRequest, parameters: frozenset[str]) -> list[Unsupported]:
    """The parameters of `req` that the provider (`parameters`) or the model (catalog) refuse.

    The catalog entry narrows the provider's set (`supported_parameters`) and adds value
    limits (`constraints`): `{"temperature": {"max": 1}, "exclusive": [["temperature",
    "top_p"]]}`.
    """
    info = req.model_info
    allowed = parameters if info is None else parameters & info.supported_parameters
    where = f"model '{req.model}'" if info is not None else f"provider '{req.provider}'"
    found: list[Unsupported] = []
    body = req.body
    for name, value in body.items():
        if name in STRUCTURAL or name in allowed or not is_set(name, value):
            continue
        found.append(Unsupported(name, f"'{name}' is not supported by {where}"))
    if info is None or not info.constraints:
        return found
    for name, limits in info.constraints.items():
        if name == "exclusive":
            for group in limits:
                present = [p for p in group if is_set(p, body.get(p))]
                if len(present) > 1:
                    found.append(
                        Unsupported(
                            present[-1],
                            f"{where} accepts only one of {', '.join(present)}; "
                            f"'{present[-1]}' cannot be set together with '{present[0]}'",
                        )
                    )
            continue
        value = body.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if "max" in limits and value > limits["max"]:
            found.append(Unsupported(name, f"'{name}' must be at most {limits['max']} for {where}"))
        elif "min" in limits and value < limits["min"]:
            found.append(Unsupported(name, f"'{name}' must be at least {limits['min']} for {where}"))
    return found


def bearer_headers(config: ProviderConfig) -> list[tuple[str, str]]:
    headers = [("content-type", "application/json")]
    if config.api_key:
        headers.append(("authorization", f"Bearer {config.api_key}"))
    headers.extend(config.headers)
    return headers

"""Settings from the environment and an optional YAML file (env wins), frozen after start.

Built-in providers and the OpenAI-compatible presets live in `PRESETS`; the file's
`providers:` section adds providers by name or adjusts a built-in one. For provider P the
environment gives `<P>_API_KEY` and `<P>_BASE_URL` (P upper-cased, `-` -> `_`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .providers.base import ProviderConfig


@dataclass(frozen=True, slots=True)
class Preset:
    kind: str
    base_url: str  # "" when there is no sensible default: <P>_BASE_URL is then required
    key_env: tuple[str, ...]
    key_required: bool = True
    base_url_env: str | None = None
    options: tuple[tuple[str, object], ...] = ()


# The preset option of providers whose API also has OpenAI's Responses API (`POST /responses`):
# the Responses door passes requests for their models through (providers/openai_responses.py).
RESPONSES = (("responses_api", True),)

PRESETS: dict[str, Preset] = {
    "openai": Preset("openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",), options=RESPONSES),
    "anthropic": Preset("anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",)),
    "google": Preset(
        "google",
        "https://generativelanguage.googleapis.com",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        base_url_env="GEMINI_BASE_URL",
    ),
    "groq": Preset("openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), options=RESPONSES),
    "mistral": Preset("openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",),
                      options=(("stream_usage", False),)),
    "deepseek": Preset("openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
    "together": Preset("openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",)),
    "openrouter": Preset("openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",),
                         options=RESPONSES),
    "xai": Preset("openai", "https://api.x.ai/v1", ("XAI_API_KEY",), options=RESPONSES),
    "fireworks": Preset("openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",)),
    "ollama": Preset("openai", "http://localhost:11434/v1", ("OLLAMA_API_KEY",), key_required=False),
    # vLLM's own default port (8000) is Lunos's too, so there is no default URL to guess.
    "vllm": Preset("openai", "", ("VLLM_API_KEY",), key_required=False),
}

KINDS = ("openai", "anthropic", "google")
METRICS_AUTH = ("none", "key", "master")
# Web search settings the environment can give: (section of `search:`, key) -> variable.
SEARCH_ENV = {
    ("searxng", "url"): "SEARXNG_URL",
    **{(name, key): f"{name.upper()}_{key.upper()}"
       for name in ("tavily", "brave", "exa") for key in ("api_key", "base_url")},
    (None, "timeout"): "LUNOS_SEARCH_TIMEOUT",
}


# Egress proxy variables, in either case (read by proxies.py through Settings.proxy_env).
PROXY_VARIABLES = frozenset(f"{scheme}_proxy" for scheme in ("http", "https", "all", "no"))


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The response cache (SPEC §10, docs/cache.md): the `cache:` section of the file."""

    default: bool = False  # on for requests that do not say, limited to `keys` / `models`
    keys: frozenset[str] = frozenset()  # key ids or names `default` applies to; empty: all
    models: frozenset[str] = frozenset()  # model ids `default` applies to; empty: all
    ttl: float = 3600.0
    max_entries: int = 10_000
    embedding_model: str = "local/all-minilm-l6-v2"
    semantic_with_tools: bool = False  # opt in to semantic hits for requests with tools


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    home: Path = Path(".lunos")
    database_url: str | None = None
    master_key: str | None = None
    redis_url: str | None = None
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    models: tuple[Mapping[str, Any], ...] = ()  # catalog overrides
    drop_params: bool = False
    # A stream that fails after it started goes on with the next candidate (docs/reliability.md).
    stream_failover: bool = True
    # The provider of a model id that names none the gateway knows (`gpt-4o`, `llama3`).
    default_provider: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    # Slow clients: seconds for a request's headers, and for its whole body.
    header_read_timeout: float = 10.0
    request_read_timeout: float = 60.0
    # Upstream timeouts in seconds.
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 120.0
    total_timeout: float = 600.0
    # Guarded fetch (image URLs, web pages).
    fetch_allow_hosts: frozenset[str] = frozenset()
    fetch_max_bytes: int = 20 * 1024 * 1024
    fetch_timeout: float = 15.0
    fetch_max_redirects: int = 5
    # Web search.
    search_backend: str | None = None
    search: Mapping[str, Any] = field(default_factory=dict)
    access_log: bool = False
    # Reliability.
    retries: int = 2
    retry_backoff: float = 0.25
    retry_after_cap: float = 10.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    max_concurrency: int = 4096
    shutdown_grace: float = 30.0
    # name -> deployments: ({"model": "openai/gpt-4o", "weight": 1, "api_key": ...}, ...)
    aliases: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    # History and keys.
    history: bool = True
    history_queue: int = 100_000
    trace_retention_days: float | None = None
    key_sync_interval: float = 1.0
    # Upstream HTTP: "fast" (the built-in client) or "httpx".
    http_transport: str = "fast"
    # The egress proxy variables (HTTPS_PROXY, NO_PROXY, ...) as the environment had them.
    proxy_env: Mapping[str, str] = field(default_factory=dict)
    # Set by `lunos serve --workers N` without Redis: the file its workers share counters in.
    shared_limits_file: str | None = None
    # /metrics: who may read it on the API port ("none", "key" or "master"), or a separate
    # (host, port) that serves it alone (then the API port does not).
    metrics_auth: str = "none"
    metrics_address: tuple[str, int] | None = None
    # The built-in embedding model's files (local_model.py); None: the weights package's.
    local_model_dir: str | None = None
    cache: CacheSettings = field(default_factory=CacheSettings)
    # One JSON line per model request on standard output ("json"), or none ("text").
    log_format: str = "text"
    # OpenTelemetry (telemetry.py): None when off, else {"endpoint": base URL or None (the
    # OTEL_EXPORTER_OTLP_* variables then say), "protocol": "http/protobuf" | "grpc",
    # "capture_content": bool, "timeout": seconds per export}.
    otel: Mapping[str, Any] | None = None

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'lunos.db').as_posix()}"


def _env_name(provider: str) -> str:
    return provider.upper().replace("-", "_").replace(".", "_")


def _provider(name: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> ProviderConfig:
    preset = PRESETS.get(name)
    kind = spec.get("kind") or (preset.kind if preset else "openai")
    if kind not in KINDS:
        raise ConfigError(f"providers.{name}.kind must be one of {', '.join(KINDS)}, not {kind!r}")
    prefix = _env_name(name)
    key_envs = (f"{prefix}_API_KEY", *(preset.key_env if preset else ()))
    if spec.get("api_key_env"):
        key_envs = (spec["api_key_env"], *key_envs)
    api_key = next((env[k] for k in key_envs if env.get(k)), None) or spec.get("api_key")
    url_envs = [f"{prefix}_BASE_URL"]
    if preset and preset.base_url_env:
        url_envs.insert(0, preset.base_url_env)
    base_url = next((env[k] for k in url_envs if env.get(k)), None) or spec.get("base_url")
    base_url = base_url or (preset.base_url if preset else None)
    if not base_url and not preset:
        raise ConfigError(f"providers.{name}.base_url is required for a provider Lunos does not know")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"the base URL of provider {name!r} must start with http:// or https://")
    key_required = spec.get("key_required", preset.key_required if preset else bool(api_key))
    headers = tuple((str(k).lower(), str(v)) for k, v in (spec.get("headers") or {}).items())
    reserved = {"kind", "api_key", "api_key_env", "base_url", "key_required", "headers"}
    options = {**dict(preset.options if preset else ()),
               **{k: v for k, v in spec.items() if k not in reserved}}
    return ProviderConfig(name, kind, (base_url or "").rstrip("/"), api_key, key_required, headers, options)


def _aliases(raw: Mapping[str, Any], providers: Mapping[str, ProviderConfig],
             env: Mapping[str, str]) -> dict:
    """`aliases:` from the file: name -> a model id, or a list of deployments."""
    if not isinstance(raw, dict):
        raise ConfigError("aliases must map names to a model id or a list of deployments")
    out: dict[str, tuple[Mapping[str, Any], ...]] = {}
    for name, spec in raw.items():
        entries = [spec] if isinstance(spec, (str, dict)) else spec
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"aliases.{name} must be a model id or a non-empty list")
        deployments = []
        for i, entry in enumerate(entries):
            entry = {"model": entry} if isinstance(entry, str) else dict(entry)
            model = entry.get("model")
            if not isinstance(model, str) or "/" not in model:
                raise ConfigError(f"aliases.{name}[{i}].model must be a 'provider/model' id")
            if model.partition("/")[0] not in providers:
                raise ConfigError(f"aliases.{name}[{i}]: unknown provider in {model!r}")
            weight = entry.get("weight", 1)
            if not isinstance(weight, (int, float)) or weight <= 0:
                raise ConfigError(f"aliases.{name}[{i}].weight must be a positive number")
            if entry.get("api_key_env"):  # read here, like every other setting
                entry["api_key"] = env.get(entry["api_key_env"]) or entry.get("api_key")
            deployments.append(entry)
        out[str(name)] = tuple(deployments)
    return out


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _address(raw: Any) -> tuple[str, int]:
    """`host:port` (`[::1]:9100` for IPv6; `:9100` means 127.0.0.1)."""
    host, sep, port = str(raw).strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(raw)
    return host.strip("[]") or "127.0.0.1", int(port)


_address.__name__ = "host:port"


OTEL_PROTOCOLS = ("http/protobuf", "grpc")


def _otel(section: Any, env: Mapping[str, str]) -> dict | None:
    """The `otel:` section, `LUNOS_OTLP_*` and the standard `OTEL_EXPORTER_OTLP_*` variables:
    on when any of them names an endpoint (or the section says `enabled: true`)."""
    if section is not None and not isinstance(section, dict):
        raise ConfigError("otel must be a mapping (endpoint, protocol, capture_content, timeout)")
    section = section or {}
    endpoint = env.get("LUNOS_OTLP_ENDPOINT") or section.get("endpoint")
    standard = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not (endpoint or standard or _bool(section.get("enabled", False))):
        return None
    if endpoint and not str(endpoint).startswith(("http://", "https://")):
        raise ConfigError("LUNOS_OTLP_ENDPOINT / otel.endpoint must start with http:// or https://")
    protocol = (env.get("LUNOS_OTLP_PROTOCOL") or section.get("protocol")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if protocol not in OTEL_PROTOCOLS:
        raise ConfigError(f"LUNOS_OTLP_PROTOCOL / otel.protocol must be one of "
                          f"{', '.join(OTEL_PROTOCOLS)}, not {protocol!r}")
    capture = env.get("LUNOS_OTEL_CAPTURE_CONTENT") or section.get("capture_content", False)
    try:
        timeout = float(env.get("LUNOS_OTLP_TIMEOUT") or section.get("timeout") or 2.0)
    except (TypeError, ValueError):
        raise ConfigError("LUNOS_OTLP_TIMEOUT / otel.timeout must be a number of seconds") from None
    if timeout <= 0:
        raise ConfigError("LUNOS_OTLP_TIMEOUT / otel.timeout must be a positive number of seconds")
    return {"endpoint": str(endpoint).rstrip("/") if endpoint else None, "protocol": protocol,
            "capture_content": _bool(capture), "timeout": timeout}


def load_settings(
    config_path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings: file values, then environment, then explicit overrides (CLI flags)."""
    env = dict(os.environ if env is None else env)
    path = config_path or env.get("LUNOS_CONFIG")
    if path is None and Path("lunos.yaml").is_file():
        path = "lunos.yaml"
    data: dict[str, Any] = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")

    def pick(key: str, env_key: str, cast=str, default=None):
        if env.get(env_key) not in (None, ""):
            raw = env[env_key]
        elif key in data and data[key] is not None:
            raw = data[key]
        else:
            return default
        try:
            return cast(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{env_key} / {key}: cannot read {raw!r} as {cast.__name__}") from None

    def nested(section: Mapping[str, Any], name: str, key: str, env_key: str | None, cast, default):
        """A value from a file section (`timeouts.connect`), the environment winning."""
        raw = env.get(env_key) if env_key else None
        if raw in (None, ""):
            raw = section.get(key)
        try:
            return default if raw in (None, "") else cast(raw)
        except (TypeError, ValueError):
            where = f"{env_key} / {name}.{key}" if env_key else f"{name}.{key}"
            raise ConfigError(f"{where}: cannot read {raw!r} as {cast.__name__}") from None

    timeouts = data.get("timeouts") or {}
    fetch = data.get("fetch") or {}
    search = dict(data.get("search") or {})
    for (section, key), env_key in SEARCH_ENV.items():  # the environment wins, as everywhere
        if env.get(env_key):
            if section is None:
                search[key] = env[env_key]
            else:
                search[section] = {**(search.get(section) or {}), key: env[env_key]}
    allow = env.get("LUNOS_FETCH_ALLOW_HOSTS")
    if allow is None:
        allow_hosts = fetch.get("allow_hosts") or []
    else:
        allow_hosts = [h for h in allow.split(",")]
    specs: dict[str, Mapping[str, Any]] = {name: {} for name in PRESETS}
    for name, spec in (data.get("providers") or {}).items():
        specs[str(name)] = spec or {}
    providers = {name: _provider(name, spec, env) for name, spec in specs.items()}
    values: dict[str, Any] = dict(
        host=pick("host", "LUNOS_HOST", str, "127.0.0.1"),
        port=pick("port", "LUNOS_PORT", int, 8000),
        workers=pick("workers", "LUNOS_WORKERS", int, 1),
        home=Path(pick("home", "LUNOS_HOME", str, ".lunos")),
        database_url=pick("database_url", "LUNOS_DATABASE_URL"),
        master_key=pick("master_key", "LUNOS_MASTER_KEY"),
        redis_url=pick("redis_url", "LUNOS_REDIS_URL"),
        providers=providers,
        models=tuple(data.get("models") or ()),
        drop_params=pick("drop_params", "LUNOS_DROP_PARAMS", _bool, False),
        stream_failover=pick("stream_failover", "LUNOS_STREAM_FAILOVER", _bool, True),
        default_provider=pick("default_provider", "LUNOS_DEFAULT_PROVIDER"),
        max_body_bytes=pick("max_body_bytes", "LUNOS_MAX_BODY_BYTES", int, 10 * 1024 * 1024),
        header_read_timeout=pick("header_read_timeout", "LUNOS_HEADER_READ_TIMEOUT", float, 10.0),
        request_read_timeout=pick("request_read_timeout", "LUNOS_REQUEST_READ_TIMEOUT", float, 60.0),
        connect_timeout=nested(timeouts, "timeouts", "connect", "LUNOS_CONNECT_TIMEOUT", float, 10.0),
        first_byte_timeout=nested(timeouts, "timeouts", "first_byte", "LUNOS_FIRST_BYTE_TIMEOUT",
                                  float, 120.0),
        idle_timeout=nested(timeouts, "timeouts", "idle", "LUNOS_IDLE_TIMEOUT", float, 120.0),
        total_timeout=nested(timeouts, "timeouts", "total", "LUNOS_TOTAL_TIMEOUT", float, 600.0),
        fetch_allow_hosts=frozenset(h.strip().lower() for h in allow_hosts if h.strip()),
        fetch_max_bytes=nested(fetch, "fetch", "max_bytes", None, int, 20 * 1024 * 1024),
        fetch_timeout=nested(fetch, "fetch", "timeout", None, float, 15.0),
        fetch_max_redirects=nested(fetch, "fetch", "max_redirects", None, int, 5),
        search_backend=pick("search_backend", "LUNOS_SEARCH_BACKEND"),
        search=search,
        access_log=pick("access_log", "LUNOS_ACCESS_LOG", _bool, False),
        history=pick("history", "LUNOS_HISTORY", _bool, True),
        history_queue=pick("history_queue", "LUNOS_HISTORY_QUEUE", int, 100_000),
        trace_retention_days=pick("trace_retention_days", "LUNOS_TRACE_RETENTION_DAYS", float),
        key_sync_interval=pick("key_sync_interval", "LUNOS_KEY_SYNC_INTERVAL", float, 1.0),
        metrics_auth=pick("metrics_auth", "LUNOS_METRICS_AUTH", str, "none").strip().lower(),
        metrics_address=pick("metrics_address", "LUNOS_METRICS_ADDRESS", _address),
        local_model_dir=pick("local_model_dir", "LUNOS_LOCAL_MODEL_DIR"),
    )
    cache = data.get("cache") or {}
    values["cache"] = CacheSettings(
        default=nested(cache, "cache", "default", "LUNOS_CACHE_DEFAULT", _bool, False),
        keys=frozenset(str(k) for k in cache.get("keys") or ()),
        models=frozenset(str(m) for m in cache.get("models") or ()),
        ttl=nested(cache, "cache", "ttl", "LUNOS_CACHE_TTL", float, 3600.0),
        max_entries=nested(cache, "cache", "max_entries", "LUNOS_CACHE_MAX_ENTRIES", int, 10_000),
        embedding_model=nested(cache, "cache", "embedding_model", None, str, "local/all-minilm-l6-v2"),
        semantic_with_tools=nested(cache, "cache", "semantic_with_tools", None, _bool, False),
    )
    if values["cache"].ttl <= 0 or values["cache"].max_entries < 1:
        raise ConfigError("cache.ttl must be above 0 and cache.max_entries at least 1")
    if values["metrics_auth"] not in METRICS_AUTH:
        raise ConfigError(f"LUNOS_METRICS_AUTH / metrics_auth must be one of {', '.join(METRICS_AUTH)}, "
                          f"not {values['metrics_auth']!r}")
    reliability = data.get("reliability") or {}

    def tuned(key: str, env_key: str, cast, default):
        raw = env.get(env_key) or reliability.get(key)
        try:
            return default if raw in (None, "") else cast(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{env_key} / reliability.{key}: cannot read {raw!r}") from None

    values.update(
        retries=tuned("retries", "LUNOS_RETRIES", int, 2),
        retry_backoff=tuned("retry_backoff", "LUNOS_RETRY_BACKOFF", float, 0.25),
        retry_after_cap=tuned("retry_after_cap", "LUNOS_RETRY_AFTER_CAP", float, 10.0),
        breaker_threshold=tuned("breaker_threshold", "LUNOS_BREAKER_THRESHOLD", int, 5),
        breaker_cooldown=tuned("breaker_cooldown", "LUNOS_BREAKER_COOLDOWN", float, 30.0),
        max_concurrency=tuned("max_concurrency", "LUNOS_MAX_CONCURRENCY", int, 4096),
        shutdown_grace=tuned("shutdown_grace", "LUNOS_SHUTDOWN_GRACE", float, 30.0),
        aliases=_aliases(data.get("aliases") or {}, providers, env),
    )
    values["http_transport"] = pick("http_transport", "LUNOS_HTTP_TRANSPORT", str, "fast").lower()
    if values["http_transport"] not in ("fast", "httpx"):
        raise ConfigError(f"LUNOS_HTTP_TRANSPORT / http_transport must be fast or httpx, "
                          f"not {values['http_transport']!r}")
    values["shared_limits_file"] = env.get("LUNOS_SHARED_LIMITS_FILE") or None
    values["log_format"] = pick("log_format", "LUNOS_LOG_FORMAT", str, "text").strip().lower()
    if values["log_format"] not in ("text", "json"):
        raise ConfigError(f"LUNOS_LOG_FORMAT / log_format must be text or json, "
                          f"not {values['log_format']!r}")
    values["otel"] = _otel(data.get("otel"), env)
    values["proxy_env"] = {k: v for k, v in env.items() if k.lower() in PROXY_VARIABLES}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values["default_provider"] and values["default_provider"] not in providers:
        raise ConfigError(f"LUNOS_DEFAULT_PROVIDER / default_provider: {values['default_provider']!r} "
                          f"is not a provider (known: {', '.join(sorted(providers))})")
    url = values["database_url"]
    if url and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("LUNOS_DATABASE_URL / database_url must be sqlite:///PATH or "
                          f"postgresql://USER@HOST:PORT/DB, not {url.partition('://')[0]!r}://…")
    if values["max_body_bytes"] <= 0:
        raise ConfigError("max_body_bytes must be positive")
    for name in ("header_read_timeout", "request_read_timeout"):
        if values[name] <= 0:
            raise ConfigError(f"LUNOS_{name.upper()} / {name} must be a positive number of seconds")
    return Settings(**values)


def share_with_workers(variable: str, value: str | None) -> None:
    """Hand a setting to worker processes, which read theirs from the environment."""
    if value is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = value

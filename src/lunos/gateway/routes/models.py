"""GET /v1/models and GET /v1/models/{id}: the catalog (public).

Each entry's `supported_parameters` is what this gateway accepts for the model: the
provider adapter's parameters narrowed by the catalog entry, the same two sets the adapter's
`check` reads, so nothing advertised is then refused. `web_search_options` is the gateway's
own web search, advertised when a search backend is configured.
"""

from __future__ import annotations

from ..asgi import send_json
from ..catalog import ModelInfo
from ..errors import GatewayError
from ..tools.web_search.config import search_config

SEARCH = "web_search_options"


def _search_configured(gw) -> bool:
    return search_config(gw.settings).default is not None


def _entry(gw, info: ModelInfo, search: bool) -> dict:
    entry = info.public()
    entry["created"] = gw.catalog.created
    adapter = gw.router.adapters.get(info.provider)
    accepted = info.supported_parameters - {SEARCH}
    if adapter is not None:
        accepted &= adapter.parameters
    chats = "text" in info.output_modalities  # not an embedding model: web search applies
    entry["supported_parameters"] = sorted(accepted | ({SEARCH} if search and chats else set()))
    return entry


MODALITIES = ("text", "image", "audio", "video", "file", "embeddings")


def _modalities(request, name: str) -> set[str]:
    """`?input=text,image`: the modalities a model must all have; a 400 for an unknown one."""
    raw = request.arg(name)
    wanted = {m.strip().lower() for m in (raw or "").split(",") if m.strip()}
    unknown = sorted(wanted - set(MODALITIES))
    if unknown:
        raise GatewayError(400, f"'{name}' takes a comma list of {', '.join(MODALITIES)}; "
                           f"{unknown[0]!r} is none of them", param=name)
    return wanted


async def list_models(gw, request, send, principal) -> None:
    search = _search_configured(gw)
    provider = request.arg("provider")
    inputs, outputs = _modalities(request, "input"), _modalities(request, "output")
    data = [_entry(gw, info, search) for info in gw.catalog
            if (not provider or info.provider == provider)
            and inputs <= set(info.input_modalities) and outputs <= set(info.output_modalities)]
    await send_json(send, 200, {"object": "list", "data": data})


async def get_model(gw, request, send, principal, model_id: str) -> None:
    info = gw.catalog.get(model_id)
    if info is None:
        raise GatewayError(404, f"The model {model_id!r} does not exist in this gateway's catalog",
                           param="model", code="model_not_found")
    await send_json(send, 200, _entry(gw, info, _search_configured(gw)))

"""A chat request's way in: validated, allowed for the key, admitted under its limits.

Shared by the chat route and the replay of a logged request (replay.py), so both check and
count a request the same way.
"""

from __future__ import annotations

from .errors import GatewayError
from .records import CallRecord
from .tools import runner_for
from .traces import without_media
from .validation import validate_chat


async def admit_chat(gw, raw: bytes, body, principal, record: CallRecord) -> tuple:
    """Validate a parsed chat body and admit it under the key's limits: (body without
    Lunos fields, options, runner, limits ticket to settle). The model the caller named
    goes on the row even when validation refuses the request (SPEC §12)."""
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        record.model = record.requested_model = body["model"][:300]
    body, options = validate_chat(body)
    record.model = body["model"]
    record.stream = bool(body.get("stream"))
    if options.observability:
        record.trace = True
        record.request = without_media(raw)  # read back as messages and params (traces.py)
    principal.check_model(body["model"], options.models, gw.router.full_id)
    runner = gw.cache.wrap(runner_for(gw, body, options), options, principal, body["model"])
    ticket = await gw.limits.admit(principal, body, candidate_infos(gw, body, options), runner)
    return body, options, runner, ticket


def candidate_infos(gw, body: dict, options) -> list:
    """Catalog entries of every model that may answer (for the worst-case reservation)."""
    infos = []
    for name in (body["model"], *options.models):
        try:
            infos.extend(route.model_info for route in gw.router.resolve(name))
        except GatewayError:
            continue
    return infos



"""GET|DELETE /v1/responses/{id} and GET /v1/responses/{id}/input_items: the caller's stored
Responses-API responses (SPEC §9.2).

A key sees only the responses it made, the master key included (OpenAI's responses belong
to one project's keys); another key's response is not found, exactly like a missing one.
"""

from __future__ import annotations

from ..asgi import Request, send_json
from ..errors import GatewayError
from ..params import text_filter, whole_number

INPUT_ITEMS = "input_items"


def not_found(response_id: str) -> GatewayError:
    """OpenAI's answer (its wording and type; OpenAI leaves `code` null, Lunos names it)."""
    return GatewayError(404, f"Response with id '{response_id}' not found.",
                        type="invalid_request_error", code="response_not_found")


def _invalid(param: str, message: str) -> GatewayError:
    return GatewayError(400, message, param=param, code="invalid_value")


async def retrieve(gw, request: Request, send, principal, rest: str) -> None:
    """GET /v1/responses/{id}, and GET /v1/responses/{id}/input_items (one prefix route:
    the rest of the path is the id, or the id and the list's name)."""
    response_id, slash, tail = rest.rpartition("/")
    if slash and tail == INPUT_ITEMS:
        await input_items(gw, request, send, principal, response_id)
        return
    if request.arg("stream") not in (None, "false"):
        # OpenAI streams a retrieved response only while a background one is running.
        raise _invalid("stream", "'stream' can only be false: a stored response is complete, "
                                 "and Lunos runs no background responses")
    row = await gw.store.get_response(rest, principal.key_id)
    if row is None:
        raise not_found(rest)
    await send_json(send, 200, row.response)


async def delete(gw, request: Request, send, principal, response_id: str) -> None:
    if not await gw.store.delete_response(response_id, principal.key_id):
        raise not_found(response_id)
    await send_json(send, 200, {"id": response_id, "object": "response.deleted", "deleted": True})


async def input_items(gw, request: Request, send, principal, response_id: str) -> None:
    """The input items the response was made from, a page at a time (`include` is accepted;
    the items are kept whole)."""
    limit = whole_number(request.arg("limit"), "limit", default=20, maximum=100)
    order = request.arg("order") or "desc"
    if order not in ("asc", "desc"):
        raise _invalid("order", "'order' must be asc or desc")
    after = text_filter(request.arg("after"), "after")
    row = await gw.store.get_response(response_id, principal.key_id)
    if row is None:
        raise not_found(response_id)
    items = row.input_items if order == "asc" else row.input_items[::-1]
    if after:
        ids = [item.get("id") if isinstance(item, dict) else None for item in items]
        if after not in ids:
            raise _invalid("after", f"'after' names no input item of response '{response_id}'")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    await send_json(send, 200, {
        "object": "list",
        "data": page,
        "first_id": _item_id(page[0]) if page else None,
        "last_id": _item_id(page[-1]) if page else None,
        "has_more": len(items) > limit,
    })


def _item_id(item) -> str | None:
    return item.get("id") if isinstance(item, dict) else None

"""Reading and checking request bodies: size limit, JSON, field types."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from .errors import InvalidRequest, PayloadTooLarge
from .types import JSON


async def read_json(request: Request, limit: int) -> JSON:
    """The body as a JSON object, refusing oversized or malformed input."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the request body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    return body


_TYPES: dict[str, tuple[type[Any], ...]] = {
    "model": (str,),
    "stream": (bool,),
    "temperature": (int, float),
    "top_p": (int, float),
    "n": (int,),
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "tools": (list,),
    "stop": (str, list),
    "response_format": (dict,),
    "stream_options": (dict,),
    "seed": (int,),
    "user": (str,),
    "metadata": (dict,),
}


def check_types(body: JSON) -> None:
    for key, types in _TYPES.items():
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__ for t in types)
            raise InvalidRequest(f"'{key}' must be of type {names}", param=key, code="invalid_type")


def check_chat(body: JSON) -> None:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is required", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages", code="invalid_type")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"messages[{index}] must be an object with a 'role'", param=f"messages[{index}]", code="invalid_type"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidRequest(
                f"messages[{index}].content must be a string or an array of parts",
                param=f"messages[{index}].content",
                code="invalid_type",
            )
    check_types(body)

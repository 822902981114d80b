"""Falcon resources by noun; each responder reads, validates, calls the store once."""

import json
from typing import Any

import falcon

from runqy import validation
from runqy.errors import PayloadTooLarge, ValidationError


def read_json(req: falcon.Request, schema: str | None = None) -> Any:
    """The request body as JSON, size-limited and validated against ``schemas/<schema>.json``."""
    limit = req.context.max_body_size
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge("request body is %d bytes; the limit is %d" % (req.content_length, limit))
    raw = req.bounded_stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge("request body is over the limit of %d bytes" % limit)
    if not raw.strip():
        raise ValidationError("request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValidationError("malformed JSON at line %d column %d: %s" % (exc.lineno, exc.colno, exc.msg)) from None
    except RecursionError:
        raise ValidationError("request body is nested too deeply") from None
    if schema:
        validation.validate(schema, body)
    return body

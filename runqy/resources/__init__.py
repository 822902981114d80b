"""Falcon resources by noun; each responder reads, validates, calls the store once."""

import json
import re
import sys
from typing import TYPE_CHECKING, Any

import falcon

from runqy import jsontext, validation
from runqy.errors import PayloadTooLarge, ValidationError

if TYPE_CHECKING:
    from runqy.store import Store

#: A \\uD800-\\uDFFF escape: JSON allows it unpaired, UTF-8 cannot store it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class Resource:
    """A resource on the store that the keys of ``roles`` may call (see runqy.auth)."""

    def __init__(self, store: "Store", roles: frozenset[str]):
        self._store = store
        self.auth_roles = roles


def read_json(req: falcon.Request, schema: str | None = None) -> Any:
    """The request body as JSON, size-limited and validated against ``schemas/<schema>.json``."""
    limit = req.context.max_body_size
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge("request body is %d bytes; the limit is %d" % (req.content_length, limit))
    # a chunked body has no Content-Length; the server has already un-chunked the stream
    chunked = req.content_length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    try:
        raw = (req.stream if chunked else req.bounded_stream).read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - each WSGI server has its own errors for a body it cannot read
        raise ValidationError("request body cannot be read: %s" % (str(exc)[:200] or type(exc).__name__)) from None
    if len(raw) > limit:
        raise PayloadTooLarge("request body is over the limit of %d bytes" % limit)
    if not raw.strip():
        raise ValidationError("request body is empty; expected a JSON object")
    try:
        body = jsontext.loads_body(raw)
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValidationError("malformed JSON at line %d column %d: %s" % (exc.lineno, exc.colno, exc.msg)) from None
    except ValueError:  # the only other one: int() refuses to convert so many digits
        raise ValidationError("request body holds an integer of more than %d digits"
                              % sys.get_int_max_str_digits()) from None
    except RecursionError:
        raise ValidationError("request body is nested too deeply") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValidationError("request body holds an unpaired UTF-16 surrogate escape") from None
    if schema:
        validation.validate(schema, body)
    return body

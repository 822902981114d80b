"""JSON text as RFC 8259 defines it: no NaN, Infinity or -Infinity, in or out.

Python's json module reads and writes those three words, and reads a number too
large for a double (``1e400``) as infinity; strict parsers (JavaScript's
``JSON.parse``, Go's ``encoding/json``) then refuse the whole document. So a
request body that holds one is refused, a stored value that holds one (a worker
may write its result straight into Redis) reads as null, JavaScript's
convention, and every answer is written with ``allow_nan=False``.

Each decoder is built once: ``json.loads`` with hooks would build one per call,
and the hooks run only for numbers with a fraction or exponent and for the
three words, so an ordinary body costs what ``json.loads`` costs. (orjson, fast as it
is, reads an integer beyond 64 bits as a float, so it only writes here.)
"""

import json
import math
from typing import Any

import orjson

from runqy.errors import ValidationError

_SHOWN = 40


def _refuse_constant(word: str) -> float:
    raise ValidationError("request body holds %s, which is not a JSON number" % word)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= _SHOWN else "%s... (%d characters)" % (text[:_SHOWN], len(text))
        raise ValidationError("request body holds a number too large for a double: %s" % shown)
    return value


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


_BODY = json.JSONDecoder(parse_float=_finite, parse_constant=_refuse_constant)
_STORED = json.JSONDecoder(parse_float=_finite_or_none, parse_constant=lambda word: None)


def _text(raw: bytes) -> str:
    """Bytes decoded as ``json.loads`` decodes them (UTF-8, -16 or -32, told by the first bytes)."""
    return raw.decode(json.detect_encoding(raw), "surrogatepass")


def loads_body(raw: bytes) -> Any:
    """A request body; ValidationError for NaN, Infinity or a number beyond a double.

    Raises what ``json.loads`` raises for anything else: ``UnicodeDecodeError``,
    ``json.JSONDecodeError``, ``RecursionError``, and ``ValueError`` for an integer
    over Python's digit limit.
    """
    return _BODY.decode(_text(raw))


def loads_stored(raw: bytes) -> Any:
    """Stored JSON text as a value; NaN, Infinity and numbers beyond a double read as None."""
    return _STORED.decode(_text(raw))


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON text, never with NaN or Infinity: an answer, or a task's payload.

    orjson writes it about ten times faster than the json module; what orjson refuses (an
    integer beyond 64 bits, which JSON allows) the json module writes.
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

"""When a task is to run: ``process_at`` or ``delay`` of an enqueue body, as Unix seconds."""

import math
from datetime import datetime
from typing import Any, Mapping

from runqy import defaults
from runqy.errors import ValidationError


def _parse(value: Any) -> float:
    """RFC 3339 text with a UTC offset, or Unix seconds (the schema has checked the shape)."""
    if not isinstance(value, str):
        return float(value)
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:  # RFC 3339 that Python does not read, such as a leap second
        raise ValidationError("$.process_at: %r cannot be read as a time" % value[:64]) from None


def process_time(body: Mapping[str, Any], now: int) -> int | None:
    """The Unix second at which the tasks of ``body`` are to run; None for now (no time, a
    time in the past, or a delay of 0)."""
    if "process_at" in body and "delay" in body:
        raise ValidationError("$: give process_at or delay, not both")
    if "delay" in body:
        at = now + body["delay"]
    elif "process_at" in body:
        at = math.ceil(_parse(body["process_at"]))
    else:
        return None
    if at <= now:
        return None
    if at - now > defaults.MAX_SCHEDULE_AHEAD:
        raise ValidationError("$.process_at: %s is more than a year ahead" % (body.get("process_at") or at))
    return at

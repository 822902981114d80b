"""The asynq ``TaskMessage`` protobuf, by hand (docs/worker-protocol.md §2.4).

The worker's decoder reads every tag as one byte, so only field numbers 1-15
are ever written. Only the fields runqy uses are named here.
"""

from dataclasses import dataclass
from typing import Callable

TYPE, PAYLOAD, ID, QUEUE, RETRY, RETRIED, ERROR_MSG = 1, 2, 3, 4, 5, 6, 7
TIMEOUT, DEADLINE, UNIQUE_KEY, LAST_FAILED_AT, RETENTION, COMPLETED_AT = 8, 9, 10, 11, 12, 13

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_STRING_FIELDS = {TYPE: "type", ID: "id", QUEUE: "queue", ERROR_MSG: "error_msg", UNIQUE_KEY: "unique_key"}
_INT_FIELDS = {RETRY: "retry", RETRIED: "retried", TIMEOUT: "timeout", DEADLINE: "deadline",
               LAST_FAILED_AT: "last_failed_at", RETENTION: "retention", COMPLETED_AT: "completed_at"}


class DecodeError(ValueError):
    """Raised when ``msg`` bytes are not a well-formed TaskMessage."""


@dataclass
class TaskMessage:
    type: str = ""
    payload: bytes = b""
    id: str = ""
    queue: str = ""
    retry: int = 0
    retried: int = 0
    error_msg: str = ""
    timeout: int = 0
    deadline: int = 0
    unique_key: str = ""
    last_failed_at: int = 0
    retention: int = 0
    completed_at: int = 0


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(field: int, data: bytes) -> bytes:
    return bytes(((field << 3) | _LEN,)) + varint(len(data)) + data


def int_field(field: int, value: int) -> bytes:
    """A varint field; proto3 leaves zero values out."""
    return bytes(((field << 3) | _VARINT,)) + varint(value) if value else b""


def head_encoder(type_: str, queue: str) -> Callable[[bytes, str], bytes]:
    """``encode_head`` for the tasks of one type and queue: what they share is encoded once."""
    first, last = length_delimited(TYPE, type_.encode()), length_delimited(QUEUE, queue.encode())

    def encode(payload: bytes, task_id: str) -> bytes:
        return first + length_delimited(PAYLOAD, payload) + length_delimited(ID, task_id.encode()) + last

    return encode


def encode_head(type_: str, payload: bytes, task_id: str, queue: str) -> bytes:
    """Fields 1-4. The enqueue script appends the integer fields it resolves."""
    return head_encoder(type_, queue)(payload, task_id)


def encode(msg: TaskMessage) -> bytes:
    """Every non-empty field, in field-number order as Go's marshaller writes them."""
    out = encode_head(msg.type, msg.payload, msg.id, msg.queue)
    for field in range(RETRY, COMPLETED_AT + 1):
        if field in _STRING_FIELDS:
            value = getattr(msg, _STRING_FIELDS[field])
            out += length_delimited(field, value.encode()) if value else b""
        elif field in _INT_FIELDS:
            out += int_field(field, getattr(msg, _INT_FIELDS[field]))
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def decode(data: bytes) -> TaskMessage:
    """Decode ``msg``; repeated fields keep the last value, as the worker does.

    Tags and most values are one-byte varints, read inline (every status read decodes one).
    """
    msg = TaskMessage()
    pos, end = 0, len(data)
    while pos < end:
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == _VARINT or wire == _LEN:
            if pos < end and data[pos] < 0x80:
                value, pos = data[pos], pos + 1
            else:
                value, pos = _read_varint(data, pos)
            if wire == _VARINT:
                if field in _INT_FIELDS:
                    setattr(msg, _INT_FIELDS[field], value)
                continue
            if pos + value > end:
                raise DecodeError("truncated field %d" % field)
            chunk = data[pos:pos + value]
            pos += value
            if field == PAYLOAD:
                msg.payload = chunk
            elif field in _STRING_FIELDS:
                setattr(msg, _STRING_FIELDS[field], chunk.decode("utf-8", "replace"))
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
            if pos > end:
                raise DecodeError("truncated fixed field %d" % field)
        else:
            raise DecodeError("unsupported wire type %d" % wire)
    return msg

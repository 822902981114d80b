"""The asynq TaskMessage encoding (docs/worker-protocol.md §2.4), byte for byte.

The walker below reads messages the way runqy-worker does: every tag is one
byte, and only wire types 0, 1, 2 and 5 exist.
"""

import random

import pytest

from runqy import keys, protobuf
from runqy.config import normalize_queue
from runqy.protobuf import DecodeError, TaskMessage
from runqy.store import NewTask, Store, connect

UUID = "0b7e6a4c-3f0e-4c9a-9a57-3c1f4e2d8b61"
QUEUE = "inference.default"

#: docs/worker-protocol.md §2.4, worked example: type/queue inference.default, payload {"x":1},
#: a uuid, retry 3, timeout 300, retention 86400.
WORKED_EXAMPLE = (
    b"\x0a\x11" + QUEUE.encode()
    + b"\x12\x07" + b'{"x":1}'
    + b"\x1a\x24" + UUID.encode()
    + b"\x22\x11" + QUEUE.encode()
    + bytes.fromhex("28 03 40 ac 02 60 80 a3 05")
)


def worker_walk(data: bytes) -> list[tuple[int, int, bytes]]:
    """(field, wire type, raw value) as the worker's one-byte-tag decoder sees them."""
    fields, pos = [], 0
    while pos < len(data):
        tag = data[pos]
        assert tag < 0x80, "tag byte %#x at offset %d is a multi-byte varint" % (tag, pos)
        field, wire = tag >> 3, tag & 7
        assert 1 <= field <= 15, "field number %d at offset %d" % (field, pos)
        pos += 1
        start = pos
        if wire == 0:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        elif wire == 2:
            size, pos = protobuf._read_varint(data, pos)
            start, pos = pos, pos + size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise AssertionError("wire type %d at offset %d" % (wire, pos - 1))
        assert pos <= len(data), "field %d runs past the end" % field
        fields.append((field, wire, data[start:pos]))
    return fields


def full_message(**overrides) -> TaskMessage:
    values = dict(type=QUEUE, payload=b'{"prompt":"hi","n":[1,2]}', id=UUID, queue=QUEUE, retry=5,
                  retried=2, error_msg="boom", timeout=300, deadline=1_700_000_300, unique_key="u:1",
                  last_failed_at=1_700_000_100, retention=86400, completed_at=1_700_000_200)
    values.update(overrides)
    return TaskMessage(**values)


# --- the worked example ---------------------------------------------------------------


def test_worked_example_is_94_bytes_with_the_documented_tail():
    assert len(WORKED_EXAMPLE) == 94


def test_encode_produces_the_worked_example_exactly():
    msg = TaskMessage(type=QUEUE, payload=b'{"x":1}', id=UUID, queue=QUEUE, retry=3, timeout=300, retention=86400)
    encoded = protobuf.encode(msg)
    assert encoded == WORKED_EXAMPLE
    assert encoded[-9:].hex(" ") == "28 03 40 ac 02 60 80 a3 05"


def test_decode_reads_the_worked_example():
    assert protobuf.decode(WORKED_EXAMPLE) == TaskMessage(
        type=QUEUE, payload=b'{"x":1}', id=UUID, queue=QUEUE, retry=3, timeout=300, retention=86400)


def test_varints_of_the_worked_example():
    assert protobuf.varint(3) == b"\x03"
    assert protobuf.varint(300) == b"\xac\x02"
    assert protobuf.varint(86400) == b"\x80\xa3\x05"
    assert protobuf.varint(0) == b"\x00"
    assert protobuf.varint(127) == b"\x7f"
    assert protobuf.varint(128) == b"\x80\x01"


# --- round trips ------------------------------------------------------------------------


def test_every_field_survives_a_round_trip():
    msg = full_message()
    assert protobuf.decode(protobuf.encode(msg)) == msg


def test_empty_message_round_trips_to_defaults():
    assert protobuf.decode(protobuf.encode(TaskMessage())) == TaskMessage()
    assert protobuf.decode(b"") == TaskMessage()


def test_payload_bytes_are_kept_verbatim_including_non_ascii_and_binary():
    for payload in ('{"text":"héllo ✓"}'.encode(), b"\x00\xff\x80raw", b"x" * 100_000):
        assert protobuf.decode(protobuf.encode(TaskMessage(type="t", payload=payload))).payload == payload


def test_large_integers_round_trip():
    nanoseconds = 1_700_000_000_123_456_789
    msg = TaskMessage(type="t", completed_at=nanoseconds, deadline=2**63 - 1, retry=2**31 - 1)
    assert protobuf.decode(protobuf.encode(msg)) == msg


def test_zero_integers_are_left_out_like_proto3():
    encoded = protobuf.encode(TaskMessage(type="t", payload=b"{}", id="i", queue="q"))
    assert [field for field, _, _ in worker_walk(encoded)] == [1, 2, 3, 4]


def test_fields_are_written_in_field_number_order():
    encoded = protobuf.encode(full_message())
    assert [field for field, _, _ in worker_walk(encoded)] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]


def test_random_messages_round_trip():
    rng = random.Random(20240601)
    for _ in range(300):
        msg = TaskMessage(
            type=rng.choice(["a.default", "inference.high", "x" * 200]),
            payload=bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))),
            id="id-%d" % rng.randrange(10**9), queue="q.%d" % rng.randrange(100),
            retry=rng.choice([0, 1, 3, 25, 1000]), retried=rng.randrange(0, 5),
            timeout=rng.choice([0, 1, 300, 2592000]), retention=rng.choice([0, 86400, 315360000]),
            completed_at=rng.choice([0, 1_700_000_000, 1_700_000_000 * 10**9]),
        )
        assert protobuf.decode(protobuf.encode(msg)) == msg


# --- field numbers --------------------------------------------------------------------------


def test_no_field_number_above_15_is_ever_emitted():
    rng = random.Random(7)
    messages = [full_message(), TaskMessage(), WORKED_EXAMPLE]
    for _ in range(200):
        messages.append(full_message(retry=rng.randrange(0, 2**31), retention=rng.randrange(0, 2**40),
                                     payload=bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))))
    for msg in messages:
        data = msg if isinstance(msg, bytes) else protobuf.encode(msg)
        for field, wire, _ in worker_walk(data):
            assert field < 16 and wire in (0, 2)


def test_every_tag_byte_of_a_full_message_is_the_documented_one():
    tags = {field: (field << 3) | wire for field, wire, _ in worker_walk(protobuf.encode(full_message()))}
    assert tags[1] == 0x0A and tags[2] == 0x12 and tags[3] == 0x1A and tags[4] == 0x22
    assert tags[5] == 0x28 and tags[6] == 0x30 and tags[8] == 0x40 and tags[12] == 0x60 and tags[13] == 0x68
    assert max(tags.values()) < 0x80


# --- tolerant decoding -----------------------------------------------------------------------


def test_repeated_varint_field_keeps_the_last_value():
    data = protobuf.encode(TaskMessage(type="t", retried=1)) + b"\x30\x04"
    assert protobuf.decode(data).retried == 4


def test_completed_at_appended_by_the_worker_is_read():
    data = WORKED_EXAMPLE + b"\x68" + protobuf.varint(1_700_000_500)
    msg = protobuf.decode(data)
    assert msg.completed_at == 1_700_000_500
    assert (msg.type, msg.payload, msg.retry) == (QUEUE, b'{"x":1}', 3)


def test_completed_at_appended_twice_keeps_the_last():
    data = protobuf.encode(full_message(completed_at=5)) + b"\x68\x06" + b"\x68\x07"
    assert protobuf.decode(data).completed_at == 7


def test_repeated_string_field_keeps_the_last_value():
    data = protobuf.encode(TaskMessage(type="first")) + protobuf.length_delimited(1, b"second")
    assert protobuf.decode(data).type == "second"


def test_fixed64_and_fixed32_fields_are_skipped():
    fixed64 = bytes(((14 << 3) | 1,)) + b"\x01\x02\x03\x04\x05\x06\x07\x08"
    fixed32 = bytes(((15 << 3) | 5,)) + b"\xaa\xbb\xcc\xdd"
    data = WORKED_EXAMPLE[:2 + 17] + fixed64 + WORKED_EXAMPLE[2 + 17:] + fixed32
    assert protobuf.decode(data) == protobuf.decode(WORKED_EXAMPLE)


def test_unknown_length_delimited_and_varint_fields_are_skipped():
    group_key = protobuf.length_delimited(14, b"group-a")
    unknown_varint = bytes(((15 << 3) | 0,)) + protobuf.varint(123456)
    assert protobuf.decode(group_key + WORKED_EXAMPLE + unknown_varint) == protobuf.decode(WORKED_EXAMPLE)


@pytest.mark.parametrize("wire", [3, 4, 6, 7])
def test_wire_types_3_4_6_7_raise_decode_error(wire):
    with pytest.raises(DecodeError):
        protobuf.decode(WORKED_EXAMPLE + bytes(((2 << 3) | wire,)) + b"\x00\x00\x00\x00\x00\x00\x00\x00")


@pytest.mark.parametrize("wire", [3, 4, 6, 7])
def test_wire_types_3_4_6_7_raise_decode_error_even_first(wire):
    with pytest.raises(DecodeError):
        protobuf.decode(bytes(((1 << 3) | wire,)))


@pytest.mark.parametrize("cut", range(1, len(WORKED_EXAMPLE)))
def test_every_truncation_of_the_worked_example_is_an_error_or_a_prefix(cut):
    """Cutting inside a field raises; cutting between fields decodes fewer fields."""
    boundaries = {2 + 17, 2 + 17 + 2 + 7, 2 + 17 + 9 + 38, 94 - 9, 94 - 7, 94 - 4}
    data = WORKED_EXAMPLE[:cut]
    if cut in boundaries:
        protobuf.decode(data)
    else:
        with pytest.raises(DecodeError):
            protobuf.decode(data)


def test_truncated_varint_value_raises():
    with pytest.raises(DecodeError):
        protobuf.decode(b"\x28\x80")
    with pytest.raises(DecodeError):
        protobuf.decode(b"\x28")


def test_truncated_length_delimited_field_raises():
    with pytest.raises(DecodeError):
        protobuf.decode(b"\x12\x07{\"x\"")
    with pytest.raises(DecodeError):
        protobuf.decode(b"\x12")


def test_truncated_fixed_fields_raise():
    with pytest.raises(DecodeError):
        protobuf.decode(bytes(((14 << 3) | 1,)) + b"\x01\x02\x03")
    with pytest.raises(DecodeError):
        protobuf.decode(bytes(((15 << 3) | 5,)) + b"\x01\x02")


def test_overlong_varint_raises():
    with pytest.raises(DecodeError):
        protobuf.decode(b"\x28" + b"\xff" * 11 + b"\x01")


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)


# --- the message the enqueue script builds ----------------------------------------------------


@pytest.fixture
def example_store(r, settings) -> Store:
    """A store whose only queue is ``inference`` with the worked example's settings."""
    store = Store(connect(settings), clock=lambda: 1_700_000_000.0, new_id=lambda: UUID)
    store.configs.put({"inference": normalize_queue("inference", {
        "max_retry": 3, "timeout": 300, "result_ttl": 86400,
        "deployment": {"git_url": "https://example.com/w.git", "startup_cmd": "python main.py"}})})
    return store


def test_enqueue_script_writes_the_worked_example_byte_for_byte(example_store, r):
    example_store.tasks.enqueue(QUEUE, [NewTask(b'{"x":1}')])
    assert r.hget(keys.task(QUEUE, UUID), "msg") == WORKED_EXAMPLE


def test_enqueue_script_msg_decodes_to_the_task_and_equals_encode(example_store, r):
    (task,) = example_store.tasks.enqueue(QUEUE, [NewTask(b'{"prompt":"caf\xc3\xa9"}', timeout=45, task_id="job-7")],
                                    max_retry=9)
    raw = r.hget(keys.task(QUEUE, "job-7"), "msg")
    msg = protobuf.decode(raw)
    assert (msg.type, msg.payload, msg.id, msg.queue) == (QUEUE, b'{"prompt":"caf\xc3\xa9"}', "job-7", QUEUE)
    assert (msg.retry, msg.timeout, msg.retention, msg.retried) == (9, 45, 86400, 0)
    assert raw == protobuf.encode(TaskMessage(type=QUEUE, payload=b'{"prompt":"caf\xc3\xa9"}', id="job-7",
                                              queue=QUEUE, retry=9, timeout=45, retention=86400))
    assert (task.id, task.max_retry, task.timeout) == ("job-7", 9, 45)
    worker_walk(raw)


def test_enqueue_script_leaves_out_retry_zero_and_retention_zero(r, settings):
    store = Store(connect(settings), new_id=lambda: UUID)
    store.configs.put({"batch": normalize_queue("batch", {
        "max_retry": 0, "result_ttl": 0,
        "deployment": {"git_url": "https://example.com/w.git", "startup_cmd": "python main.py"}})})
    store.tasks.enqueue("batch.default", [NewTask(b"[1,2]")])
    raw = r.hget(keys.task("batch.default", UUID), "msg")
    assert [field for field, _, _ in worker_walk(raw)] == [1, 2, 3, 4, 8]
    assert raw == protobuf.encode(TaskMessage(type="batch.default", payload=b"[1,2]", id=UUID,
                                              queue="batch.default", timeout=1800))


def test_enqueue_script_encodes_multi_byte_varints_like_python(r, settings):
    store = Store(connect(settings), new_id=lambda: UUID)
    store.configs.put({"long": normalize_queue("long", {
        "max_retry": 1000, "timeout": 2592000, "result_ttl": 315360000,
        "deployment": {"git_url": "https://example.com/w.git", "startup_cmd": "python main.py"}})})
    store.tasks.enqueue("long.default", [NewTask(b"{}")])
    raw = r.hget(keys.task("long.default", UUID), "msg")
    assert raw == protobuf.encode(TaskMessage(type="long.default", payload=b"{}", id=UUID, queue="long.default",
                                              retry=1000, timeout=2592000, retention=315360000))
    worker_walk(raw)

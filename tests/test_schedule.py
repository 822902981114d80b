"""When a task is to run (runqy.schedule): process_at or delay against a pinned now."""

import pytest

from runqy import defaults
from runqy.errors import ValidationError
from runqy.schedule import process_time

NOW = 1_700_000_000


@pytest.mark.parametrize("body, expected", [
    ({}, None),
    ({"delay": 0}, None),
    ({"delay": 30}, NOW + 30),
    ({"process_at": NOW - 100}, None),
    ({"process_at": NOW}, None),
    ({"process_at": NOW + 10.2}, NOW + 11),  # a fraction of a second is never early
    ({"process_at": "2023-11-14T22:13:40Z"}, NOW + 20),
    ({"process_at": "2023-11-15T00:13:40+02:00"}, NOW + 20),
    ({"process_at": "2023-11-14T22:13:40.5Z"}, NOW + 21),
    ({"delay": defaults.MAX_SCHEDULE_AHEAD}, NOW + defaults.MAX_SCHEDULE_AHEAD),
])
def test_process_time_of_a_body(body, expected):
    assert process_time(body, NOW) == expected


@pytest.mark.parametrize("body, message", [
    ({"delay": 5, "process_at": NOW + 5}, "$: give process_at or delay, not both"),
    ({"process_at": NOW + defaults.MAX_SCHEDULE_AHEAD + 1}, "is more than a year ahead"),
    ({"process_at": "2025-11-14T22:13:20Z"}, "$.process_at: 2025-11-14T22:13:20Z is more than a year ahead"),
    ({"process_at": "2023-11-14T22:13:60Z"}, "$.process_at: '2023-11-14T22:13:60Z' cannot be read as a time"),
])
def test_a_time_that_cannot_be_used_is_a_validation_error(body, message):
    with pytest.raises(ValidationError) as caught:
        process_time(body, NOW)
    (text,) = caught.value.messages
    assert message in text

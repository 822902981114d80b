"""GET /api/cli/stats (runqy/resources/stats.py, docs/product.md §6): Redis as the overview shows it,
and the daily processed and failed counters summed over every queue."""

import pytest

from runqy import keys
from tests.conftest import ADMIN, CLIENT
from tests.helpers import TODAY, YESTERDAY, errors_of


def test_stats_answers_redis_and_seven_days_of_history_by_default(admin, r):
    r.set(keys.processed("simple.default", TODAY), 3)
    r.set(keys.failed("inference.high", YESTERDAY), 2)

    answer = admin.simulate_get("/api/cli/stats", headers=ADMIN)

    assert answer.status_code == 200
    body = answer.json
    assert body["time"] == "2025-06-15T15:06:40Z"
    assert body["redis"]["version"] == r.info()["redis_version"]
    assert body["redis"]["connected_clients"] >= 1 and body["redis"]["used_memory"] > 0
    assert body["redis"]["mode"] == "standalone"
    assert len(body["history"]) == 7
    assert body["history"][-1] == {"date": TODAY, "processed": 3, "failed": 0}
    assert body["history"][-2] == {"date": YESTERDAY, "processed": 0, "failed": 2}


def test_stats_reads_as_many_days_as_asked(admin):
    assert len(admin.simulate_get("/api/cli/stats", params={"days": 30}, headers=ADMIN).json["history"]) == 30


@pytest.mark.parametrize("days", ["0", "91", "-1", "x"])
def test_stats_with_days_out_of_range_is_400(admin, days):
    answer = admin.simulate_get("/api/cli/stats", params={"days": days}, headers=ADMIN)
    assert answer.status_code == 400
    assert "days" in errors_of(answer)[0]


def test_stats_is_for_the_admin_key_only(admin):
    assert admin.simulate_get("/api/cli/stats", headers=CLIENT).status_code == 403
    assert admin.simulate_get("/api/cli/stats").status_code == 401

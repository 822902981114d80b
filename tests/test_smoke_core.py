"""A first end-to-end check of the route table over a real gunicorn."""

import requests

from runqy import keys
from tests.conftest import ADMIN


def test_enqueue_over_gunicorn_writes_the_task_and_status_reads_it_back(server, r):
    answer = requests.post(server.url + "/queue/add", json={"queue": "inference.high", "data": {"n": 1}},
                           headers=ADMIN, timeout=5)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["info"]["id"]
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [task_id.encode()]
    status = requests.get(server.url + "/queue/" + task_id, headers=ADMIN, timeout=5).json()["info"]
    assert (status["state"], status["payload"], status["queue"]) == ("pending", {"n": 1}, "inference.high")

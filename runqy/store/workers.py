"""Workers, read from the heartbeats runqy-worker writes (docs/worker-protocol.md §3.3)."""

from typing import Any

from runqy import keys
from runqy.errors import WorkerNotFound
from runqy.store.plumbing import Plumbing
from runqy.store.records import Worker, json_value


class Workers:
    def __init__(self, db: Plumbing):
        self._db = db

    def _ids(self) -> list[str]:
        """Workers with a heartbeat hash, and registry members that beat in the last 30 min."""
        client = self._db.client
        ids = {m.decode() for m in client.zrangebyscore(keys.WORKERS, self._db.now(), "+inf")}
        for key in client.scan_iter(match=keys.worker("*"), count=5000, _type="hash"):
            worker_id = keys.worker_id_of(key.decode())
            if worker_id is not None:
                ids.add(worker_id)
        return sorted(ids)

    def all(self) -> list[Worker]:
        ids = self._ids()
        pipe = self._db.client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(keys.worker(worker_id))
        return [Worker.from_hash(worker_id, h, self._db.now()) for worker_id, h in zip(ids, pipe.execute())]

    def get(self, worker_id: str, log_lines: int) -> tuple[Worker, list[Any]]:
        """A worker with a heartbeat hash, or one that beat in the last 30 min, and its log lines."""
        if not keys.is_worker_id(worker_id):
            raise WorkerNotFound(worker_id)
        pipe = self._db.client.pipeline(transaction=False)
        pipe.hgetall(keys.worker(worker_id))
        pipe.lrange(keys.worker_logs(worker_id), -log_lines, -1)
        pipe.zscore(keys.WORKERS, worker_id)
        fields, logs, score = pipe.execute()
        if not fields and (score is None or score < self._db.now()):
            raise WorkerNotFound(worker_id)
        return Worker.from_hash(worker_id, fields, self._db.now()), [json_value(line) for line in logs]

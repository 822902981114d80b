"""Queue configs: ``runqy:configs`` (parent name -> config JSON) and the enqueue defaults of
every sub-queue (``runqy:{Q}:config``), which the enqueue script reads."""

import json
from typing import Any

import redis

from runqy import keys
from runqy.config import digest, sub_queues
from runqy.errors import ConfigExists, ConfigNotFound, ConfigsLost, QueueNotFound, RunqyError
from runqy.queue_names import parent_of
from runqy.store.plumbing import Plumbing

#: The fields of a queue config that each of its sub-queues' defaults hash holds.
_ENQUEUE_DEFAULTS = ("max_retry", "timeout", "result_ttl", "failed_ttl", "pending_timeout")


class Configs:
    def __init__(self, db: Plumbing):
        self._db = db

    def put(self, configs: dict[str, dict[str, Any]], replace: bool = True, *,
            yaml_digest: str | None = None) -> list[str]:
        """Create or replace queue configs, with the enqueue defaults of each sub-queue; the new names.

        One optimistic transaction on ``runqy:configs``: a concurrent change makes it
        start over. Without ``replace`` an existing name is a ConfigExists and nothing is
        written. Sub-queues a config no longer lists lose their defaults (so enqueue
        to them is refused); their tasks stay in Redis. ``yaml_digest`` is recorded
        with the configs of the YAML directory (see :meth:`unknown_queue`).
        """
        names = list(configs)

        def write(pipe: redis.client.Pipeline) -> list[str]:
            old = pipe.hmget(keys.CONFIGS, names) if names else []
            existing = [name for name, previous in zip(names, old) if previous]
            if existing and not replace:
                raise ConfigExists(*existing)
            pipe.multi()
            for name, previous in zip(names, old):
                config = configs[name]
                full = sub_queues(config)
                for gone in set(sub_queues(json.loads(previous)) if previous else ()) - set(full):
                    pipe.delete(keys.queue_config(gone))
                pipe.hset(keys.CONFIGS, name, json.dumps(config, sort_keys=True))
                for queue in sorted(full):
                    pipe.hset(keys.queue_config(queue), mapping={k: config[k] for k in _ENQUEUE_DEFAULTS})
                    pipe.sadd(keys.QUEUES, queue)
            if yaml_digest:
                pipe.set(keys.CONFIGS_YAML, yaml_digest)
            return [name for name in names if name not in existing]

        return self._db.client.transaction(write, keys.CONFIGS, value_from_callable=True)

    def put_yaml(self, configs: dict[str, dict[str, Any]]) -> None:
        """Write the configs of the YAML directory, recording their digest (see :meth:`unknown_queue`)."""
        self.put(configs, yaml_digest=digest(configs))

    def yaml_digest(self) -> str | None:
        """The digest recorded with the YAML configs; None when Redis has lost them."""
        raw = self._db.client.get(keys.CONFIGS_YAML)
        return raw.decode() if raw is not None else None

    def unknown_queue(self, name: str) -> RunqyError:
        """The error for a queue without a config: QueueNotFound, unless Redis has lost its data.

        A Redis that restarted empty, was flushed or failed over to an empty replica
        has lost the digest key too; every server process puts the YAML configs back
        within a second or two (runqy.server), so until then the answer is a
        retryable ConfigsLost (503), never a 404 for a queue that exists. A config that
        is there by now (put back since the caller looked) is the same retryable 503.
        """
        digest_kept, known = self._known_queues()
        configured = {q for q, priority in known.items() if priority is not None}
        if not digest_kept or name in configured or any(parent_of(q) == name for q in configured):
            return ConfigsLost()
        return QueueNotFound(name, known)

    def known_queues(self) -> dict[str, int | None]:
        """Every configured sub-queue and every queue in ``asynq:queues``, with its priority
        (None for a queue without a config)."""
        return self._known_queues()[1]

    def _known_queues(self) -> tuple[bool, dict[str, int | None]]:
        """Whether the YAML digest is there, and :meth:`known_queues`, read in one round trip."""
        pipe = self._db.client.pipeline(transaction=False)
        pipe.exists(keys.CONFIGS_YAML)
        pipe.hgetall(keys.CONFIGS)
        pipe.smembers(keys.QUEUES)
        digest_kept, configs, members = pipe.execute()
        known: dict[str, int | None] = {m.decode(): None for m in members}
        for raw in configs.values():
            known.update(sub_queues(json.loads(raw)))
        return bool(digest_kept), known

    def get(self, name: str) -> dict[str, Any] | None:
        raw = self._db.client.hget(keys.CONFIGS, name)
        return json.loads(raw) if raw else None

    def of(self, queue: str) -> dict[str, Any]:
        """The config of ``queue``'s parent; the :meth:`unknown_queue` error without one."""
        config = self.get(parent_of(queue))
        if config is None:
            raise self.unknown_queue(queue)
        return config

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(v) for _, v in sorted(self._db.client.hgetall(keys.CONFIGS).items())]

    def delete(self, name: str) -> None:
        """Forget a queue config; its tasks stay in Redis, enqueue to it is refused."""
        config = self.get(name)
        if config is None:
            raise ConfigNotFound(name)
        pipe = self._db.client.pipeline(transaction=True)
        pipe.hdel(keys.CONFIGS, name)
        for queue in sub_queues(config):
            pipe.delete(keys.queue_config(queue))
        pipe.execute()

"""Prometheus metrics: HTTP traffic measured per process, queue state read from Redis.

HTTP counters and histograms are kept by each gunicorn worker; with several
workers, ``PROMETHEUS_MULTIPROC_DIR`` (set by runqy/gunicorn_conf.py) makes
prometheus-client share them through files, and a scrape adds them up. Queue
metrics are read at scrape time with the store's queue statistics (one
pipeline for all queues), so every process reports the same numbers.

Every HTTP label value comes from a small fixed set, whatever clients send: a
label set is a series kept for the life of the process (and a record in its
multiprocess file), so a label taken from the request (a path, or a method
gunicorn accepts as any upper-case token) would let anyone grow memory, disk
and scrape time without bound. Routes are route templates (``unmatched`` for no
route), methods outside ``_METHODS`` are ``other``, statuses are the ones the app
answers with.
"""

import logging
import os
import time
from typing import Iterator

import falcon
import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runqy.store import Store

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: asynq's task states; runqy's held tasks are pending tasks of a paused queue
_STATES = ("pending", "active", "scheduled", "retry", "archived", "completed")
#: route labels of the static files, which have no route template
_STATIC = (("/swagger/", "/swagger/{file}"), ("/schemas/", "/schemas/{file}"))
#: the methods with a label of their own; any other is counted as ``other``
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class QueueCollector:
    """asynq-compatible queue metrics, read from Redis at each scrape."""

    def __init__(self, store: Store):
        self._store = store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("runqy_redis_up", "1 when Redis answered this scrape")
        try:
            _, queues = self._store.queues.page(limit=1 << 30)
        except redis.exceptions.RedisError as exc:
            logger.warning("metrics: redis unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        size = GaugeMetricFamily("asynq_queue_size", "Number of tasks in a queue", labels=["queue"])
        latency = GaugeMetricFamily("asynq_queue_latency_seconds",
                                    "Age of the oldest pending task of a queue", labels=["queue"])
        paused = GaugeMetricFamily("asynq_queue_paused_total", "1 when the queue is paused", labels=["queue"])
        held = GaugeMetricFamily("runqy_queue_held_tasks", "Pending tasks held back while the queue is paused",
                                 labels=["queue"])
        by_state = GaugeMetricFamily("asynq_tasks_enqueued_total", "Number of tasks of a queue in each state",
                                     labels=["queue", "state"])
        processed = CounterMetricFamily("asynq_tasks_processed", "Tasks that succeeded", labels=["queue"])
        failed = CounterMetricFamily("asynq_tasks_failed", "Tasks that failed for good", labels=["queue"])
        for q in queues:
            counts = {state: getattr(q, state) for state in _STATES}
            counts["pending"] += q.held
            size.add_metric([q.name], sum(counts.values()))
            latency.add_metric([q.name], q.latency_seconds)
            paused.add_metric([q.name], int(q.paused))
            held.add_metric([q.name], q.held)
            for state, count in counts.items():
                by_state.add_metric([q.name, state], count)
            processed.add_metric([q.name], q.processed)
            failed.add_metric([q.name], q.failed)
        moved = CounterMetricFamily("runqy_housekeeper_moved_tasks", "Tasks the housekeeper moved to pending "
                                    "(scheduled, retry) or to a paused queue's held list (swept)", labels=["source"])
        for source, count in self._store.housekeeping.moved().items():
            moved.add_metric([source], count)
        yield from (size, latency, paused, held, by_state, processed, failed, moved)


class Metrics:
    """The HTTP metrics of one app, and the /metrics resource that exposes everything."""

    def __init__(self, store: Store, housekeeper: Collector | None = None):
        self._multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self._registry = CollectorRegistry()
        self._requests = Counter("runqy_http_requests", "HTTP requests by route template, method and status",
                                 ["route", "method", "status"], registry=self._registry)
        self._latency = Histogram("runqy_http_request_duration_seconds",
                                  "HTTP request latency by route template, method and status",
                                  ["route", "method", "status"], buckets=_BUCKETS, registry=self._registry)
        # read at each scrape: the queues (from Redis) and this process's housekeeper
        self._scraped = [QueueCollector(store)] + ([housekeeper] if housekeeper else [])
        self._series: dict[tuple, tuple] = {}  # label set -> (counter, histogram) of it
        if not self._multiprocess:
            for collector in self._scraped:
                self._registry.register(collector)

    # middleware ------------------------------------------------------------------------

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        route = req.uri_template or next((label for prefix, label in _STATIC
                                          if req.path.startswith(prefix) and resp.status_code < 400), "unmatched")
        method = req.method if req.method in _METHODS else "other"
        labels = (route, method, resp.status_code)
        series = self._series.get(labels)
        if series is None:  # looking a label set up costs more than counting: once per set
            series = self._series[labels] = (self._requests.labels(*labels), self._latency.labels(*labels))
        series[0].inc()
        series[1].observe(time.perf_counter() - req.context.started)

    # resource ----------------------------------------------------------------------------

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        registry = self._registry
        if self._multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self._scraped:
                registry.register(collector)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(registry)

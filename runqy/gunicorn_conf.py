"""gunicorn settings for runqy; every value can be overridden from the environment."""

import glob
import logging
import multiprocessing
import os
import tempfile

# Several worker processes share their HTTP metrics through files in this
# directory; it must be set before prometheus-client is first imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="runqy-metrics-")

bind = "%s:%s" % (os.environ.get("HOST", "0.0.0.0"), os.environ.get("PORT", "3000"))
# gthread workers keep client connections alive (runqy's variant answers gunicorn's own
# request errors as JSON); processes scale across cores
worker_class = "runqy.gunicorn_worker.JsonErrorWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# threads only hide Redis latency; more of them cost CPU without adding throughput
threads = int(os.environ.get("RUNQY_THREADS", 2))
# one listening socket per worker: the kernel spreads keep-alive connections over all of them
reuse_port = True
keepalive = 30
timeout = 30
graceful_timeout = 10
# request lines and headers have limits of their own; bodies are limited by RUNQY_MAX_BODY_SIZE
limit_request_line = 8190
accesslog = os.environ.get("RUNQY_ACCESS_LOG") or None
loglevel = os.environ.get("RUNQY_LOG_LEVEL", "info")


def on_starting(server):
    from runqy import server as runqy_server

    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.unlink(stale)
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    runqy_server.start()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

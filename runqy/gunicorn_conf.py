"""gunicorn settings for runqy: ``gunicorn -c python:runqy.gunicorn_conf runqy.wsgi:app``, which is
what ``runqy serve`` runs. Every value can be overridden on gunicorn's command line.

The serving model: one process per core, each a gevent worker (runqy/gunicorn_worker.py)
that holds up to ``worker_connections`` connections as greenlets, so slow or idle clients
cost memory, not the capacity to answer others, and bounds the time a request may take to
arrive. gunicorn itself is the HTTP front: no proxy is needed in front of it (put one there
for TLS).
"""

import glob
import logging
import multiprocessing
import os
import socket
import sys
import tempfile
import warnings

from runqy import defaults

# gunicorn has imported ssl before its gevent worker patches it; runqy serves plain HTTP and
# opens no TLS connection before the patch, so the warning each worker would print says nothing
warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported")

# Several worker processes share their HTTP metrics through files in this
# directory; it must be set before prometheus-client is first imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="runqy-metrics-")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


bind = "%s:%s" % (os.environ.get("HOST", defaults.HOST), os.environ.get("PORT", str(defaults.PORT)))
worker_class = "runqy.gunicorn_worker.JsonErrorWorker"
# one process per core: a gevent worker keeps its core busy by itself
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_connections = int(os.environ.get("RUNQY_WORKER_CONNECTIONS", defaults.WORKER_CONNECTIONS))
# the request line and headers must arrive within this time, which is also how long an idle
# keep-alive connection stays open; the body then has RUNQY_BODY_TIMEOUT
keepalive = defaults.HEADER_TIMEOUT
timeout = defaults.WORKER_TIMEOUT
graceful_timeout = defaults.GRACEFUL_TIMEOUT
# request lines and headers have limits of their own; bodies are limited by RUNQY_MAX_BODY_SIZE
limit_request_line = defaults.LIMIT_REQUEST_LINE
limit_request_fields = defaults.LIMIT_REQUEST_FIELDS
limit_request_field_size = defaults.LIMIT_REQUEST_FIELD_SIZE
# SO_REUSEPORT only when asked for: it lets another server start on a port this one holds and
# take part of its connections
reuse_port = _flag("RUNQY_REUSE_PORT")
# gunicorn's control socket is one path per user: several servers on a host would share it
control_socket_disable = True
accesslog = os.environ.get("RUNQY_ACCESS_LOG") or None
# client, request line, status, bytes, time taken, user agent: never a header (keys, cookies)
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
loglevel = os.environ.get("RUNQY_LOG_LEVEL", defaults.LOG_LEVEL)


def _refuse_taken_ports(server) -> None:
    """Stop at once, with a clear message, when another process listens on a bound port."""
    if server.cfg.reuse_port or os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"):
        return
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            continue  # a unix socket: gunicorn checks it
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
            try:
                probe.bind(address)
            except OSError as exc:
                sys.exit("runqy: cannot listen on %s:%d: %s. Another server holds the port: stop it or "
                         "set PORT (RUNQY_REUSE_PORT=true shares a port on purpose)"
                         % (address[0], address[1], exc.strerror or exc))


def on_starting(server):
    from runqy import config
    from runqy.errors import ConfigError

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    try:  # the workers load them too; checked here first, so that a bad file is reported once
        config.load_configs(config.Settings.from_env().config_dir)
    except ConfigError as exc:
        sys.exit("runqy: cannot start:\n  " + "\n  ".join(exc.messages))
    _refuse_taken_ports(server)
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.unlink(stale)


def when_ready(server):
    """One summary of what this server is, once it listens (its workers say no more of it)."""
    from runqy import __version__, config
    from runqy.vault import Cipher

    settings = config.Settings.from_env()
    queues = config.load_configs(settings.config_dir)
    listening = ", ".join("http://%s:%d" % a if isinstance(a, tuple) else str(a) for a in server.cfg.address)
    dashboard = "off" if not settings.dashboard else "read-only" if settings.dashboard_read_only else "on"
    cipher = Cipher(settings.vault_master_key)
    server.log.info(
        "runqy %s listening at %s: %d gevent worker process(es), %d connections each; Redis %s%s%s; "
        "%d queue config(s) from %s: %s; vaults %s; dashboard %s (/monitoring)",
        __version__, listening, server.cfg.workers, server.cfg.worker_connections, settings.redis_location,
        " (TLS)" if settings.redis_tls else "",
        ", writes wait for %d replica(s)" % settings.redis_wait_replicas if settings.redis_wait_replicas else "",
        len(queues),
        settings.config_dir, ", ".join(sorted(queues)) or "(none)",
        "on" if cipher.enabled else "off (%s)" % cipher.problem, dashboard)


def pre_fork(server, worker):
    # an app preloaded in this process must not run its background loops here: threads and
    # fork do not mix, and the workers run their own (runqy.background)
    from runqy import background

    background.stop_all()


def post_worker_init(worker):
    from runqy import background

    background.start_all()


def worker_exit(server, worker):
    from runqy import background

    background.stop_all()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

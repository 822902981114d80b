"""Every default runqy uses, each in one place with the reason for its value."""

from pathlib import Path

#: Port of the HTTP server (the Go server's default), and the address it listens on (every
#: interface: a server in a container or VM is reached from outside it).
PORT = 3000
HOST = "0.0.0.0"
#: gunicorn: connections one worker process holds at once (a greenlet and a few KiB each).
WORKER_CONNECTIONS = 1000
#: gunicorn: seconds a worker may be silent before the master replaces it, and the time a
#: stopping worker has to finish the requests it holds.
WORKER_TIMEOUT = 30
GRACEFUL_TIMEOUT = 10
#: gunicorn: limits of a request line and its headers (its own defaults, stated here).
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
LOG_LEVEL = "info"
#: Directory of YAML queue configs loaded at start-up and on reload when RUNQY_CONFIG_DIR is unset:
#: ./config when it exists (a checkout), else EXAMPLE_CONFIG_DIR.
CONFIG_DIR = "config"
#: The example queue configs installed with the package: the checkout's config/ (setup.cfg says how).
EXAMPLE_CONFIG_DIR = Path(__file__).parent / "example_config"
#: Largest request body accepted; a batch of 1000 mid-sized payloads fits.
MAX_BODY_SIZE = 10 * 1024 * 1024
#: Seconds a request's headers may take to arrive (from the connection opening or the previous
#: answer on it: gunicorn's keep-alive time), and then its body. A real client sends a 10 MiB
#: body in well under a second on any network a task queue runs on; a client that trickles
#: bytes is cut after at most HEADER_TIMEOUT + BODY_TIMEOUT.
HEADER_TIMEOUT = 15
BODY_TIMEOUT = 15
#: Most jobs in one POST /queue/add-batch (one pipeline must stay short).
MAX_BATCH_JOBS = 1000

#: Task listing page size, and the most one page may hold.
PAGE = 20
MAX_PAGE = 1000
#: Largest listing offset: far beyond any real list, well inside Redis' 64-bit indexes.
MAX_OFFSET = 10**12
#: The state a task listing shows when none is asked for: the tasks still waiting for a worker.
TASK_STATE = "pending"

#: Days of the daily processed and failed counters GET /api/cli/stats sums when not asked, and the
#: most it reads (asynq's workers keep each day's counters for 90 days).
HISTORY_DAYS = 7
MAX_HISTORY_DAYS = 90

#: Lines of a worker's log shown by GET /api/cli/workers/{id}.
WORKER_LOG_LINES = 50

#: Queue config defaults (docs/product.md §3 and §7).
PRIORITY = 1
MODE = "long_running"
MAX_RETRY = 3
#: Execution limit handed to the worker as ``active_timeout`` when nobody sets one.
TIMEOUT = 1800
#: ``ttl_completed``: how long a completed task and its result stay readable.
RESULT_TTL = 86400
#: ``ttl_archived``: how long a failed task stays readable.
FAILED_TTL = 259200
#: ``pending_timeout``: 0 lets a task wait for a worker forever.
PENDING_TIMEOUT = 0
BRANCH = "main"
#: Results are only readable when the worker keeps the task hash (docs/worker-protocol.md §2.9).
REDIS_STORAGE = True

#: Lifetime of the reverse key ``asynq:t:<id>`` (the Go server's 30 days).
TASK_QUEUE_TTL = 30 * 24 * 3600
#: Task ids whose queue one server process remembers, to read a task in one round trip: the
#: newest ones, which clients ask about most; about 200 bytes each.
REMEMBERED_TASKS = 20_000

#: A worker whose last heartbeat is older than this is stale (its hash expires after 30 s).
WORKER_STALE_AFTER = 30

#: Where Redis is when neither REDIS_URL nor REDIS_HOST/REDIS_PORT/REDIS_DB say (its own defaults).
REDIS_HOST = "localhost"
REDIS_PORT = 6379
REDIS_DB = 0
#: Redis client timeouts, in seconds. A command that Redis (single-threaded, sub-millisecond
#: per command) has not answered in a second will not be answered soon: a stopped or frozen
#: Redis then costs a request at most REDIS_POOL_TIMEOUT + REDIS_SOCKET_TIMEOUT before its 503.
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_SOCKET_TIMEOUT = 1.0
#: Connections one server process may hold; a request waits this long for a free one.
REDIS_MAX_CONNECTIONS = 64
REDIS_POOL_TIMEOUT = 1.0
#: RUNQY_REDIS_WAIT_REPLICAS: how long a change waits for the replicas to confirm it before it is
#: answered 503. A replica on the primary's network confirms within milliseconds; this stays well
#: inside REDIS_SOCKET_TIMEOUT.
REDIS_WAIT_TIMEOUT = 0.5
#: How often each server process checks that Redis still holds the YAML queue configs.
CONFIG_CHECK_EVERY = 1.0

#: Furthest ahead a task may be scheduled (process_at or delay): one year.
MAX_SCHEDULE_AHEAD = 365 * 24 * 3600
#: How often the housekeeper moves due scheduled and retry tasks to pending: a task runs at
#: most this late (plus the worker's own poll); RUNQY_HOUSEKEEPING_INTERVAL.
HOUSEKEEPING_EVERY = 0.25
#: Lifetime of the housekeeper's lease: when its holder dies, another server process takes it
#: over within this time. Renewed on every round, so it only has to outlast a slow one.
HOUSEKEEPER_LEASE = 3.0
#: Due tasks one housekeeping script call moves per queue and set, so that Redis is never
#: blocked for long; a queue with more goes on at the next call of the same round.
FORWARD_CHUNK = 500
#: Tasks one run-again script call moves; a whole state is moved in such chunks.
RUN_AGAIN_CHUNK = 500
#: GET /queue/{id}?wait=: the longest wait, the wait of ``wait=true`` (the Go server's spelling),
#: and how often each process asks Redis which waited-for tasks have finished (a waiting
#: request answers within this time of the worker's write).
MAX_WAIT = 60
WAIT_TRUE = 30
WAIT_POLL_EVERY = 0.05

# --- the dashboard (runqy/dashboard/, runqy/sessions.py) ---

#: A dashboard session ends after this many seconds without a request (a working day), and every
#: request signed in with it starts the count again.
SESSION_TTL = 8 * 3600
#: ... and after this many seconds since signing in, whatever: a page left open refreshes itself
#: every few seconds and would otherwise keep its session forever.
SESSION_MAX_AGE = 24 * 3600

# --- the admin CLI (runqy/cli/) and its client (runqy/client.py) ---

#: The server called when no flag, variable or saved profile names one: this machine's, on its default port.
CLI_SERVER = "http://localhost:%d" % PORT
#: Seconds the admin client waits to connect and for an answer: the server answers within about a
#: second even when Redis is gone (then 503), so an answer ten seconds late is not coming.
CLI_TIMEOUT = 10.0
#: Extra attempts for a GET that failed to connect, timed out or got a gateway error, which a
#: moment later is often gone; only GETs, which change nothing, are sent again.
CLI_RETRIES = 2
#: urllib3's back-off factor between those attempts, in seconds: short, a person is waiting.
CLI_RETRY_BACKOFF = 0.2
#: Tasks ``task list`` shows without -l (the original CLI's page).
CLI_TASK_LIST_LIMIT = 10
#: Seconds between the redraws of ``--watch`` (watch(1)'s interval).
CLI_WATCH_INTERVAL = 2.0
#: The name ``login`` saves a profile under without -n: most people use one server.
CLI_PROFILE = "default"
#: Directory of the saved profiles, under the home directory, when RUNQY_CONFIG_HOME is unset.
CLI_HOME = ".runqy"
#: How long the answer to a request with an Idempotency-Key is kept for its repeats.
IDEMPOTENCY_TTL = 24 * 3600

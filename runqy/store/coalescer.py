"""Group commit for Redis: the commands of requests in flight at the same moment travel together.

Most of what one request costs runqy is not Redis's work but the round trip to it: taking a
pooled connection, the system calls to send and to wait, and the client's bookkeeping. So the
store sends its commands through one :class:`Coalescer` per process, which does what
databases do with their logs. While one round trip is out, the calls that arrive wait; when it
returns, everything that gathered goes out as one pipeline on one connection, and each caller
gets its own replies, errors included. There is no timer and no added delay: an idle server
sends a call at once, and a busy one sends fewer, larger writes. Every call keeps its own
atomicity (a script call stays one script call) and its own errors.

Hand-offs are cheap under gevent (runqy's gunicorn worker), where the waiting callers are
greenlets; under threads the same code is correct, with locks and events of ``threading``.
"""

import socket
import threading
from typing import Any, Sequence

import hiredis
import redis
from redis._parsers.base import BaseParser

#: Bytes asked of the socket at a time.
_READ_SIZE = 65536


class _Call:
    """One caller's commands, and what came back for them."""

    __slots__ = ("commands", "replies", "error", "done", "leads")

    def __init__(self, commands: Sequence[Sequence[Any]]):
        self.commands = commands
        self.replies: list[Any] = []
        self.error: BaseException | None = None
        self.done: threading.Event | None = None  # only a call that waits needs one
        self.leads = False  # set with done: this call sends the next batch


class Coalescer:
    """Runs batches of Redis commands, one round trip at a time, gathering the calls meanwhile."""

    def __init__(self, pool: redis.ConnectionPool):
        self._pool = pool
        self._lock = threading.Lock()
        self._waiting: list[_Call] = []
        self._busy = False  # a round trip is out, or about to be
        self._connection: redis.connection.AbstractConnection | None = None

    def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The raw replies to ``commands``, in order; an error reply is an exception in the list.

        Raises ConnectionError or TimeoutError when Redis did not answer; the commands may
        then have run.
        """
        call = _Call(commands)
        with self._lock:
            self._waiting.append(call)
            leads = not self._busy
            if leads:
                self._busy = True
            else:
                call.done = threading.Event()
        if not leads:
            call.done.wait()
            leads = call.leads
        if leads:
            self._send_waiting()
        if call.error is not None:
            raise call.error
        return call.replies

    def _send_waiting(self) -> None:
        """Send every waiting call as one batch, then hand the lead to a call that came meanwhile."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            replies = self._round_trip([command for call in batch for command in call.commands])
        except BaseException as exc:  # each caller raises it: none of them may hang
            for call in batch:
                call.error = exc
        else:
            start = 0
            for call in batch:
                call.replies = replies[start:start + len(call.commands)]
                start += len(call.commands)
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].leads = True
                    self._waiting[0].done.set()
                else:
                    self._busy = False
            for call in batch:
                if call.done is not None:
                    call.done.set()

    def _round_trip(self, commands: list[Sequence[Any]]) -> list[Any]:
        """Send ``commands`` and read their replies on the coalescer's own connection.

        One batch is out at a time, so one connection serves them all; it is taken from the
        pool once and kept, and redis-py connects it (password, database, TLS). The bytes go
        through hiredis directly, without redis-py's per-command bookkeeping. A connection
        that Redis closed while idle (a restart) is readable before anything was sent: it is
        replaced first, as the pool would.
        """
        connection = self._connection
        if connection is None:
            connection = self._connection = self._pool.get_connection()
        else:
            try:
                stale = connection._sock is not None and connection.can_read()
            except (redis.exceptions.ConnectionError, OSError):
                stale = True
            if stale:
                connection.disconnect()
        try:
            if connection._sock is None:
                connection.connect()
            sock = connection._sock
            sock.sendall(b"".join([hiredis.pack_command(tuple(command)) for command in commands]))
            reader = hiredis.Reader()
            replies: list[Any] = []
            while len(replies) < len(commands):
                reply = reader.gets()
                if reply is False:
                    data = sock.recv(_READ_SIZE)
                    if not data:
                        raise redis.exceptions.ConnectionError("Connection closed by server.")
                    reader.feed(data)
                elif isinstance(reply, hiredis.ReplyError):
                    replies.append(BaseParser.parse_error(str(reply)))
                else:
                    replies.append(reply)
            return replies
        except BaseException as exc:
            connection.disconnect()  # what is still unread on it belongs to nobody
            if isinstance(exc, socket.timeout):
                raise redis.exceptions.TimeoutError("Timeout reading from socket") from None
            if isinstance(exc, OSError):
                raise redis.exceptions.ConnectionError("Error talking to Redis: %s" % exc) from None
            raise

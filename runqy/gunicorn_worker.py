"""runqy's gunicorn worker: gevent, a deadline on every request, JSON for gunicorn's own errors.

Why gevent: each connection costs a greenlet, not a thread, so connections that
send slowly (or not at all) cannot take the pool that other clients need, and a
request that waits (on Redis, or long-polling) costs next to nothing. What a
greenlet per connection does not bound, this worker does:

- a connection must start with what can begin an HTTP/1 request line; anything
  else (a TLS ClientHello sent to a plain-HTTP port, random bytes) gets a 400 at
  once and is closed, instead of waiting for a line end that never comes;
- the request line and headers must arrive within ``keepalive`` seconds of the
  connection opening or of the previous answer (gunicorn's own rule for gevent);
- the body must then arrive within ``RUNQY_BODY_TIMEOUT`` seconds: it is read
  here, before the app runs, as a buffering proxy would (a body over
  ``RUNQY_MAX_BODY_SIZE`` is not read: the app answers 413 and the connection
  closes). Too slow gets a 408 and a close.

gunicorn refuses some requests before the app sees them (a request line over
``limit_request_line`` → 414, a malformed request or chunk → 400) and writes an
HTML page for them. runqy promises ``{"errors": [...]}`` for every error, so the
writer gunicorn looks up on its util module at call time is replaced, once, when
this module is imported.
"""

import io
import json
import os
import re
import socket
import ssl

import gevent
from gunicorn import util
from gunicorn.http.errors import NoMoreData
from gunicorn.workers.ggevent import GeventWorker

from runqy import config

#: What the first bytes of an HTTP/1 request may look like: an optional empty line, then a
#: method (a token of at most 20 characters, upper-case as gunicorn requires) and a space.
#: Anything else cannot become a request.
_REQUEST_START = re.compile(rb"\r?\n?[-!#$%&'*+.^_`|~0-9A-Z]{0,20}( |$)")
_PEEK = 24
#: Seconds to drain a refused connection's unread input before closing it.
_LINGER = 1.0


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"errors": ["%s: %s" % (reason, mesg) if mesg else reason]}).encode()
    head = ("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (status_int, reason, len(body)))
    util.write_nonblock(sock, head.encode("latin1") + body)


util.write_error = write_json_error


class JsonErrorWorker(GeventWorker):
    """The gevent worker with runqy's limits on slow and malformed requests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_body_size = config.max_body_size(os.environ)
        self.body_timeout = config.body_timeout(os.environ)

    def handle(self, listener, client, addr) -> None:
        client.setblocking(1)
        if not isinstance(client, ssl.SSLSocket):
            start = b""
            with gevent.Timeout(self.cfg.keepalive, False):
                start = client.recv(_PEEK, socket.MSG_PEEK)
            if not start:  # closed, or silent for the whole keep-alive time
                util.close(client)
                return
            if not _REQUEST_START.match(start):
                self._refuse(client, 400, "Bad Request", "this port speaks HTTP/1.1 only")
                return
        super().handle(listener, client, addr)

    def handle_request(self, listener_name, req, sock, addr):
        self._read_body(req, sock)
        return super().handle_request(listener_name, req, sock, addr)

    def _read_body(self, req, sock) -> None:
        """Replace the request's body stream by the whole body, read within the body timeout."""
        length = getattr(req.body.reader, "length", None)  # None: chunked
        if length == 0:
            return
        if length is not None and length > self.max_body_size:
            req.must_close = True  # the app answers 413 without reading it
            return
        if req._expected_100_continue:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            req._expected_100_continue = False
        try:
            with gevent.Timeout(self.body_timeout):
                data = req.body.read(self.max_body_size + 1)
        except gevent.Timeout:
            self._refuse(sock, 408, "Request Timeout",
                         "the request body did not arrive within %g seconds" % self.body_timeout)
            raise StopIteration() from None
        except NoMoreData:
            self._refuse(sock, 400, "Bad Request", "the request body ended before its declared end")
            raise StopIteration() from None
        if len(data) > self.max_body_size:
            req.must_close = True  # the rest is still on the wire; the app answers 413
        req.body = io.BytesIO(data)

    def _refuse(self, sock, status: int, reason: str, message: str) -> None:
        """Answer ``status`` and close. Bytes the client sent that were not read are drained
        for a moment first: closing with unread input resets the connection, and the client
        would lose the answer."""
        try:
            write_json_error(sock, status, reason, message)
            sock.shutdown(socket.SHUT_WR)
            with gevent.Timeout(_LINGER, False):
                while sock.recv(65536):
                    pass
        except OSError:
            pass
        util.close(sock)

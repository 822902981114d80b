"""gunicorn's threaded worker, answering the errors gunicorn itself raises as JSON.

gunicorn refuses some requests before the app sees them (a request line over
``limit_request_line`` → 414, a malformed request → 400) and writes an HTML
page for them. runqy promises ``{"errors": [...]}`` for every error, so this
worker replaces that page. gunicorn's handler looks the writer up on its util
module at call time; the replacement is made once, when the worker class is
imported.
"""

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"errors": ["%s: %s" % (reason, mesg) if mesg else reason]}).encode()
    head = ("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (status_int, reason, len(body)))
    util.write_nonblock(sock, head.encode("latin1") + body)


util.write_error = write_json_error


class JsonErrorWorker(ThreadWorker):
    """The gthread worker (keep-alive connections, a thread pool per process) with JSON errors."""

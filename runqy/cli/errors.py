"""The CLI's exit codes, and the failures it finds itself, without the server's word."""

#: Exit codes.
OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3
#: Ctrl-C: the shell's code for a process ended by SIGINT.
INTERRUPTED = 130
EXIT_CODES = """exit codes:
  0  done
  1  the server refused (its messages are printed on stderr), or a local check failed
  2  usage error: bad flags, bad JSON payload, unreadable file
  3  the server cannot be reached or did not answer in time"""


class UsageError(Exception):
    """Raised when the command line (or a file or payload it names) cannot be used; exit 2."""


class Refused(Exception):
    """Raised when a local check says no (unknown profile, invalid config file); exit 1."""

    def __init__(self, *messages: str):
        super().__init__(*messages)
        self.messages = list(messages)

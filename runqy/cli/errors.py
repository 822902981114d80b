"""The CLI's exit codes, the failures it finds itself, and what to do after the server's refusals.

Every failure goes out the same way (:func:`runqy.cli.output.fail`): ``Error: ...`` lines on
stderr, then one line that says what to do next.
"""

#: Exit codes.
OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3
#: Ctrl-C: the shell's code for a process ended by SIGINT.
INTERRUPTED = 130
EXIT_CODES = """exit codes:
  0  done
  1  the server refused (its messages are printed on stderr), or a local check failed
  2  usage error: bad flags, bad JSON payload, unreadable file
  3  the server cannot be reached or did not answer in time"""

#: Where the server and the key come from, for the hints that send people there.
SERVER_FROM = "-s/--server, RUNQY_SERVER or the profile saved by 'runqy login'"
KEY_FROM = "-k/--api-key, RUNQY_API_KEY or the profile saved by 'runqy login'"
UNREACHABLE_HINT = ("Check that the server runs at that URL (it comes from %s; 'runqy auth status' shows which "
                    "is in use); --request-timeout SECONDS waits longer." % SERVER_FROM)


class CliError(Exception):
    """Base of the failures the CLI finds itself; ``hint`` says what to do next."""

    code = REFUSED

    def __init__(self, *messages: str, hint: str = ""):
        super().__init__(*messages)
        self.messages = list(messages)
        self.hint = hint


class UsageError(CliError):
    """Raised when the command line (or a file or payload it names) cannot be used; exit 2."""

    code = USAGE


class Refused(CliError):
    """Raised when a local check says no (unknown profile, invalid config file); exit 1."""


class Unreached(CliError):
    """Raised when a command that handles the server's failures itself could not reach it; exit 3."""

    code = UNREACHABLE


#: What to do after a refusal of the server: (its status, or 0 for any; a phrase of one of its
#: messages, or "" for any; the next step). The first that fits is printed.
_NEXT_STEPS = (
    (0, "RUNQY_VAULT_MASTER_KEY", "RUNQY_VAULT_MASTER_KEY is a setting of the server, not of this CLI: set it in the "
                                  "server's environment and restart the server."),
    (0, "redis unavailable", "The server cannot reach its Redis: try again once Redis answers."),
    (400, "", "'runqy COMMAND -h' shows the command's arguments and an example."),
    (401, "", "The API key comes from %s." % KEY_FROM),
    (403, "", "This key's role may not do that: the admin commands need the server's admin key (its RUNQY_API_KEY)."),
    (404, "queue config not found", "'runqy config list' lists the queue configs."),
    (404, "queue not found", "'runqy queue list' lists the queues."),
    (404, "task not found", "'runqy task list QUEUE --state STATE' lists a queue's tasks."),
    (404, "worker not found", "'runqy worker list' lists the workers."),
    (404, "vault not found", "'runqy vault list' lists the vaults."),
    (404, "entry not found", "'runqy vault entries VAULT' lists a vault's entries."),
    (409, "duplicate task", "Wait until the task that holds the lock is done and its --unique-for has run out, "
                            "or delete that task."),
    (409, "queue config already exists", "'runqy config create --force' replaces it."),
    (409, "vault already exists", "'runqy vault show NAME' shows it; give the new vault another name."),
    (409, "task", "'runqy task get QUEUE ID' shows the task as it is."),
    (422, "Idempotency-Key", "Give a new --idempotency-key for another task."),
)


def next_step(status: int, messages: list[str]) -> str:
    """What to do after the server answered ``status`` with ``messages``; "" when they say it."""
    for wanted, phrase, step in _NEXT_STEPS:
        if wanted in (0, status) and any(phrase in m for m in messages):
            return step
    if status >= 500:
        return "The server could not do it: try again, and look at the server's log if it goes on."
    return ""

"""One error hierarchy. ``runqy.app`` maps each class to its HTTP status once."""


class RunqyError(Exception):
    """Base of every error runqy raises on purpose; carries one or more messages."""

    status = 500

    def __init__(self, *messages: str):
        super().__init__(*messages)
        self.messages = list(messages) or [self.__class__.__doc__ or "error"]


class ValidationError(RunqyError):
    """Raised when a request body, parameter or config file is invalid."""

    status = 400


class Unauthorized(RunqyError):
    """Raised when a request carries no API key, or an unknown one."""

    status = 401


class Forbidden(RunqyError):
    """Raised when a known API key is not allowed to call a route."""

    status = 403


class NotFound(RunqyError):
    """Raised when a queue, task, worker, config or vault does not exist."""

    status = 404


class Conflict(RunqyError):
    """Raised when the change clashes with what is stored (exists, wrong state)."""

    status = 409


class PayloadTooLarge(RunqyError):
    """Raised when a request body is over the configured size limit."""

    status = 413


class Unavailable(RunqyError):
    """Raised when a backing service (Redis, the vault key) cannot be used."""

    status = 503


class ConfigError(RunqyError):
    """Raised when the server's settings or a queue config file are invalid."""

    status = 400

"""What every part of the store shares: the client, the Lua scripts, pipelines through the
coalescer, the clock and the id maker, and the one place where a script's refusal (a
negative return code) becomes an error."""

import hashlib
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import redis
from redis.client import EMPTY_RESPONSE, NEVER_DECODE

from runqy.errors import RunqyError
from runqy.store.coalescer import Coalescer
from runqy.store.records import uuid4

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
#: redis-py options that steer reading a reply, not parsing it
_NOT_FOR_CALLBACKS = frozenset(("keys", EMPTY_RESPONSE, NEVER_DECODE))

Fill = Callable[[redis.client.Pipeline], None]
#: What a script's negative return codes mean: code -> the error, made from the whole reply.
Refusals = Mapping[int, Callable[[Any], RunqyError]]


class Script:
    """A Lua script from ``runqy/lua``, addressed by its SHA1."""

    def __init__(self, name: str):
        self.name = name
        self.source = (LUA_DIR / (name + ".lua")).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


class Plumbing:
    """The Redis access the store's parts share; one per store, built once per process."""

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = uuid4):
        self.client = client
        self.clock = clock
        self.new_id = new_id
        self.scripts = {p.stem: Script(p.stem) for p in LUA_DIR.glob("*.lua")}
        self._coalescer = Coalescer(client.connection_pool)

    def now(self) -> int:
        return int(self.clock())

    def pipeline(self, fill: Fill) -> list:
        """Run the commands ``fill`` queues in one round trip; errors come back as values.

        The commands go through the coalescer, with those of other requests in flight, and
        each reply is parsed as redis-py would. When Redis has forgotten a script (restart,
        SCRIPT FLUSH) the scripts are loaded and only the script calls that failed run
        again: a script that is not found has not run, and the other commands must not run
        twice.
        """
        pipe = self.client.pipeline(transaction=False)
        fill(pipe)
        return self._run(list(pipe.command_stack))

    def replies(self, fill: Fill) -> list:
        """:meth:`pipeline`, raising the first error Redis answered instead of returning it."""
        replies = self.pipeline(fill)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def queue_script(self, pipe: redis.client.Pipeline, name: str, script_keys: Sequence[str],
                     args: Sequence[Any]) -> None:
        """Add a call of script ``name`` to ``pipe``."""
        pipe.evalsha(self.scripts[name].sha, len(script_keys), *script_keys, *args)

    def script(self, name: str, script_keys: Sequence[str], args: Sequence[Any], refusals: Refusals = {}) -> Any:
        """One call of script ``name``, its reply; Redis's error reply is raised, and so is the
        error ``refusals`` makes of a negative return code (the reply, or its first item)."""
        command = ("EVALSHA", self.scripts[name].sha, len(script_keys), *script_keys, *args)
        (reply,) = self._run([(command, {})])
        if isinstance(reply, Exception):
            raise reply
        code = (reply[0] if reply else None) if isinstance(reply, list) else reply
        if isinstance(code, int) and code < 0:
            raise refusals[code](reply)
        return reply

    def _load_scripts(self) -> None:
        for script in self.scripts.values():
            self.client.script_load(script.source)

    def _run(self, stack: list[tuple[tuple, dict]]) -> list:
        """:meth:`pipeline` for commands given as ``(args, options)``, as a pipeline's stack holds them."""
        results = self._execute(stack)
        missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:
            self._load_scripts()
            for i, result in zip(missing, self._execute([stack[i] for i in missing])):
                results[i] = result
        return results

    def _execute(self, stack: list[tuple[tuple, dict]]) -> list:
        """The parsed replies to pipeline commands ``(args, options)``, errors as values."""
        replies = self._coalescer.execute([args for args, _ in stack])
        return [reply if isinstance(reply, Exception) else self._parse(args, options, reply)
                for (args, options), reply in zip(stack, replies)]

    def _parse(self, args: tuple, options: dict, reply: Any) -> Any:
        """A raw reply as redis-py's own parsing makes it (its response callback for the command)."""
        callback = self.client.response_callbacks.get(args[0])
        if callback is None:
            return reply
        return callback(reply, **{k: v for k, v in options.items() if k not in _NOT_FOR_CALLBACKS})

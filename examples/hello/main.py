"""A runqy task: greet whoever the payload names.

runqy-worker starts this process once (long-running mode), waits for it to say it is ready,
then hands it one task at a time on stdin; the SDK's ``run()`` does that talking. Whatever
``hello`` returns is the task's result; an exception fails the task (retried while its
queue's ``max_retry`` allows), ``RetryableError`` says so on purpose.
"""

import os

from runqy_python import load, run, task


@load
def setup() -> dict:
    # Runs once, before the first task: load models and open connections here, not per task.
    return {"greeting": os.environ.get("GREETING", "Hello")}


@task
def hello(payload: dict, ctx: dict) -> dict:
    name = payload.get("name") if isinstance(payload, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("the payload needs a \"name\" string, e.g. {\"name\": \"Ada\"}")
    return {"message": "%s, %s!" % (ctx["greeting"], name)}


if __name__ == "__main__":
    run()

"""The states of a task, as asynq names them and the task hash's ``state`` field holds them.

- ``pending``: waiting in ``asynq:{Q}:pending`` (or in runqy's held list while the queue is paused)
- ``active``: a worker is running it
- ``scheduled``: waiting for its time in ``asynq:{Q}:scheduled``
- ``retry``: failed, waiting for its next attempt in ``asynq:{Q}:retry``
- ``archived``: failed for good or canceled, kept until its ``ttl_archived`` runs out
- ``completed``: succeeded, kept with its result until its ``ttl_completed`` runs out
"""

TASK_STATES = ("pending", "active", "scheduled", "retry", "archived", "completed")
#: States a task listing (and deleting a whole state) takes: ``held`` is the part of pending held
#: back by a pause (its tasks' hashes say pending); ``pending`` lists both, held first.
LISTED_STATES = TASK_STATES + ("held",)
#: States a task never leaves by itself.
FINAL_STATES = ("completed", "archived")
#: States a task can be run again from, at once (POST .../run).
RUNNABLE_STATES = ("scheduled", "retry", "archived")

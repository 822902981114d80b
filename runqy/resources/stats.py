"""GET /api/cli/stats: what the dashboard's overview shows beside the queues."""

import falcon

from runqy import defaults
from runqy.resources import Resource
from runqy.store import rfc3339


class Stats(Resource):
    """Redis (version, memory, clients) and tasks processed and failed per day over every queue,
    the last ``days`` days (7 unless asked, at most 90), oldest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        days = req.get_param_as_int("days", min_value=1, max_value=defaults.MAX_HISTORY_DAYS) or defaults.HISTORY_DAYS
        resp.media = {"redis": self._store.redis_info(), "history": self._store.queues.history(days),
                      "time": rfc3339(self._store.db.now())}

"""Queue configuration administration: /api/cli/configs."""

from pathlib import Path
from typing import Any

import falcon

from runqy import config, validation
from runqy.config import Settings
from runqy.resources import Resource, read_json
from runqy.store import Store
from runqy.vault import VAULT_REF, mask


def public_config(queue: dict[str, Any] | None) -> dict[str, Any] | None:
    """A queue config as answers show it: a literal git token masked (``vault://`` references are not secret)."""
    token = (queue or {}).get("deployment", {}).get("git_token")
    if not token or token.startswith(VAULT_REF):
        return queue
    return {**queue, "deployment": {**queue["deployment"], "git_token": mask(token)}}


class Configs(Resource):
    """GET lists every queue config; POST creates one (``?force=true`` replaces it)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        configs = [public_config(c) for c in self._store.configs.all()]
        resp.media = {"configs": configs, "count": len(configs)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        force = req.get_param_as_bool("force") or False
        queue = config.queue_from_body(read_json(req))
        created = bool(self._store.configs.put({queue["name"]: queue}, replace=force))
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"config": public_config(queue), "created": created}


class Config(Resource):
    """DELETE /api/cli/configs/{name}: the config goes, the queue's tasks stay."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        validation.check_param("name_part", name, "name")
        self._store.configs.delete(name)
        resp.media = {"name": name, "deleted": True}


class Reload(Resource):
    """POST /api/cli/configs/reload: upsert the queues of every valid YAML file.

    A file with any error changes nothing; its errors are in the answer.
    """

    def __init__(self, store: Store, settings: Settings, roles: frozenset[str]):
        super().__init__(store, roles)
        self._dir = settings.config_dir

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        queues, failures = config.load_dir(self._dir)
        self._store.configs.put_yaml(queues)
        resp.media = {"loaded": sorted(queues), "count": len(queues),
                      "errors": {Path(path).name: messages for path, messages in failures.items()}}

"""Settings from the environment, and queue configs from YAML files."""

import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlparse

import yaml

from runqy import defaults, validation
from runqy.errors import ConfigError
from runqy.queue_names import sub_queue_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment (docs/product.md §2)."""

    api_key: str
    worker_api_key: str = ""
    client_api_key: str = ""
    redis_host: str = defaults.REDIS_HOST
    redis_port: int = defaults.REDIS_PORT
    redis_password: str = field(default="", repr=False)
    redis_db: int = defaults.REDIS_DB
    redis_tls: bool = False
    redis_public_addr: str = ""
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = ""
    redis_sentinel_password: str = field(default="", repr=False)
    redis_wait_replicas: int = 0
    config_dir: str = defaults.CONFIG_DIR
    max_body_size: int = defaults.MAX_BODY_SIZE
    vault_master_key: str = field(default="", repr=False)
    port: int = defaults.PORT
    housekeeping_every: float = defaults.HOUSEKEEPING_EVERY
    dashboard: bool = True
    dashboard_read_only: bool = False

    @property
    def redis_location(self) -> str:
        """Where Redis is, for people: its address, or the Sentinels and the primary they watch."""
        if self.redis_sentinels:
            return "Sentinels %s (primary %r) db %d" % (
                ",".join("%s:%d" % s for s in self.redis_sentinels), self.redis_sentinel_master, self.redis_db)
        return "%s:%d db %d" % (self.redis_host, self.redis_port, self.redis_db)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        api_key = env.get("RUNQY_API_KEY", "")
        if not api_key:
            raise ConfigError("RUNQY_API_KEY is not set: the server needs an admin API key "
                              "(for development: RUNQY_API_KEY=%s)" % secrets.token_urlsafe(24))
        redis = _redis_from_env(env)
        return cls(
            api_key=api_key,
            worker_api_key=env.get("RUNQY_WORKER_API_KEY", ""),
            client_api_key=env.get("RUNQY_CLIENT_API_KEY", ""),
            redis_public_addr=env.get("RUNQY_REDIS_PUBLIC_ADDR", ""),
            config_dir=_config_dir(env),
            max_body_size=max_body_size(env),
            vault_master_key=env.get("RUNQY_VAULT_MASTER_KEY", ""),
            port=_int(env, "PORT", defaults.PORT),
            redis_wait_replicas=_count(env, "RUNQY_REDIS_WAIT_REPLICAS"),
            housekeeping_every=_seconds(env, "RUNQY_HOUSEKEEPING_INTERVAL", defaults.HOUSEKEEPING_EVERY),
            dashboard=_flag(env, "RUNQY_DASHBOARD", True),
            dashboard_read_only=_flag(env, "RUNQY_DASHBOARD_READ_ONLY", False),
            **redis,
        )


def max_body_size(env: Mapping[str, str]) -> int:
    """``RUNQY_MAX_BODY_SIZE``: larger request bodies get 413."""
    return _int(env, "RUNQY_MAX_BODY_SIZE", defaults.MAX_BODY_SIZE)


def body_timeout(env: Mapping[str, str]) -> int:
    """``RUNQY_BODY_TIMEOUT``: seconds a request body may take to arrive once its headers have."""
    return _int(env, "RUNQY_BODY_TIMEOUT", defaults.BODY_TIMEOUT)


def _config_dir(env: Mapping[str, str]) -> str:
    """RUNQY_CONFIG_DIR, else ./config when there is one, else the example configs of the package."""
    if env.get("RUNQY_CONFIG_DIR"):
        return env["RUNQY_CONFIG_DIR"]
    if Path(defaults.CONFIG_DIR).is_dir():
        return defaults.CONFIG_DIR
    logger.warning("RUNQY_CONFIG_DIR is unset and there is no ./%s: serving the example queue configs of %s",
                   defaults.CONFIG_DIR, defaults.EXAMPLE_CONFIG_DIR)
    return str(defaults.EXAMPLE_CONFIG_DIR)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError("%s must be an integer, not %r" % (name, raw)) from None


def _count(env: Mapping[str, str], name: str) -> int:
    value = _int(env, name, 0)
    if value < 0:
        raise ConfigError("%s must be 0 or more, not %d" % (name, value))
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError("%s must be true or false, not %r" % (name, env[name]))


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0.01 <= value <= 60:
        raise ConfigError("%s must be a number of seconds from 0.01 to 60, not %r" % (name, raw))
    return value


def _sentinels_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """REDIS_SENTINELS=host:port[,host:port...] with REDIS_SENTINEL_MASTER (and REDIS_SENTINEL_PASSWORD)."""
    raw = env.get("REDIS_SENTINELS", "").strip()
    if not raw:
        return {}
    sentinels = []
    for item in raw.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("REDIS_SENTINELS must be host:port[,host:port...], not %r" % raw)
        sentinels.append((host.strip("[]"), int(port)))
    master = env.get("REDIS_SENTINEL_MASTER", "").strip()
    if not master:
        raise ConfigError("REDIS_SENTINELS is set: REDIS_SENTINEL_MASTER must name the primary the Sentinels watch "
                          "(the name of their 'sentinel monitor' line)")
    return {"redis_sentinels": tuple(sentinels), "redis_sentinel_master": master,
            "redis_sentinel_password": env.get("REDIS_SENTINEL_PASSWORD", "")}


def _redis_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    sentinels = _sentinels_from_env(env)
    if sentinels:
        return {**sentinels, "redis_password": env.get("REDIS_PASSWORD", ""),
                "redis_db": _int(env, "REDIS_DB", defaults.REDIS_DB), "redis_tls": _flag(env, "REDIS_TLS", False)}
    url = env.get("REDIS_URL", "")
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ConfigError("REDIS_URL must look like redis[s]://[:password@]host:port/db")
        try:
            db = int(parsed.path.lstrip("/") or defaults.REDIS_DB)
            port = parsed.port or defaults.REDIS_PORT
        except ValueError:
            raise ConfigError("REDIS_URL has an invalid port or database number") from None
        return {"redis_host": parsed.hostname, "redis_port": port, "redis_db": db,
                "redis_password": unquote(parsed.password or ""), "redis_tls": parsed.scheme == "rediss"}
    return {"redis_host": env.get("REDIS_HOST", defaults.REDIS_HOST),
            "redis_port": _int(env, "REDIS_PORT", defaults.REDIS_PORT),
            "redis_password": env.get("REDIS_PASSWORD", ""),
            "redis_db": _int(env, "REDIS_DB", defaults.REDIS_DB),
            "redis_tls": env.get("REDIS_TLS", "").lower() in ("1", "true", "yes")}


# --- queue configs -----------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key %r" % (key,), key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def whole(value: Any) -> Any:
    """JSON Schema's ``integer`` admits ``2.0``; Go's decoder in the worker does not."""
    return int(value) if isinstance(value, float) else value


def normalize_queue(name: str, entry: Mapping[str, Any], source: str = "api") -> dict[str, Any]:
    """A validated queue entry with every default filled in (docs/product.md §7).

    The result is what Redis stores and what the API answers; ``sub_queues``
    always lists at least one entry, with short names. ``source`` says where the
    config came from: ``yaml`` (the config directory, restored by the server when
    Redis loses it) or ``api`` (POST /api/cli/configs, kept only by Redis).
    """
    entry = {k: v for k, v in entry.items() if k not in ("name", "source")}
    names = [sub["name"] for sub in entry.get("sub_queues", [])]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError("$.sub_queues: duplicate sub-queue name %s" % ", ".join(duplicates))
    priority = whole(entry.get("priority", defaults.PRIORITY))
    deployment = dict(entry["deployment"])
    if "startup_timeout_secs" in deployment:
        deployment["startup_timeout_secs"] = whole(deployment["startup_timeout_secs"])
    mode = entry.get("mode") or deployment.get("mode") or defaults.MODE
    deployment.update(mode=mode, branch=deployment.get("branch", defaults.BRANCH),
                      redis_storage=deployment.get("redis_storage", defaults.REDIS_STORAGE),
                      vaults=deployment.get("vaults", []))
    subs = entry.get("sub_queues") or [{"name": "default", "priority": priority}]
    return {
        "name": name,
        "priority": priority,
        "mode": mode,
        "max_retry": whole(entry.get("max_retry", defaults.MAX_RETRY)),
        "timeout": whole(entry.get("timeout", defaults.TIMEOUT)),
        "result_ttl": whole(entry.get("result_ttl", defaults.RESULT_TTL)),
        "failed_ttl": whole(entry.get("failed_ttl", defaults.FAILED_TTL)),
        "pending_timeout": whole(entry.get("pending_timeout", defaults.PENDING_TIMEOUT)),
        "sub_queues": [{"name": s["name"], "priority": whole(s.get("priority", priority))} for s in subs],
        "deployment": deployment,
        "source": source,
    }


def queue_from_body(body: Any) -> dict[str, Any]:
    """Validate and normalise an API body: one YAML queue entry plus its ``name``."""
    validation.validate("queue_config", body)
    if "name" not in body:
        raise ConfigError("$: 'name' is a required property")
    return normalize_queue(body["name"], body)


def _where(path: str, error_path: list) -> str:
    if len(error_path) >= 2 and error_path[0] == "queues":
        field_path = ".".join(map(str, error_path[2:])) or "(the queue entry)"
        return "%s: queue '%s': field '%s'" % (path, error_path[1], field_path)
    return "%s: field '%s'" % (path, ".".join(map(str, error_path)) or "(top level)")


def load_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse, validate and normalise one YAML file; every problem names file, queue and field."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: undecodable, or an int of too many digits
        raise ConfigError("%s: cannot read YAML: %s" % (path, str(exc).replace("\n", " "))) from None
    problems = sorted(validation.validator("queue_config_file").iter_errors(document),
                      key=lambda e: list(map(str, e.absolute_path)))
    if problems:
        raise ConfigError(*("%s: %s" % (_where(str(path), list(e.absolute_path)),
                                         validation.describe(e).split(": ", 1)[1]) for e in problems))
    queues = {}
    for name, entry in document["queues"].items():
        try:
            queues[name] = normalize_queue(name, entry, source="yaml")
        except ConfigError as exc:
            raise ConfigError(*("%s: queue '%s': %s" % (path, name, m) for m in exc.messages)) from None
    return queues


def load_dir(directory: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Every ``*.yaml``/``*.yml`` file of ``directory``: (queues by name, errors by file).

    A queue defined in two files is an error of the second file.
    """
    queues: dict[str, dict[str, Any]] = {}
    failures: dict[str, list[str]] = {}
    defined_in: dict[str, str] = {}
    root = Path(directory)
    if not root.is_dir():
        return {}, {str(root): ["%s: not a directory" % root]}
    for path in sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml")):
        try:
            loaded = load_file(path)
        except ConfigError as exc:
            failures[str(path)] = exc.messages
            continue
        clashes = sorted(set(loaded) & set(queues))
        if clashes:
            failures[str(path)] = ["%s: queue '%s' is already defined in %s" % (path, n, defined_in[n])
                                   for n in clashes]
            continue
        queues.update(loaded)
        defined_in.update(dict.fromkeys(loaded, path.name))
    return queues, failures


def digest(queues: Mapping[str, Any]) -> str:
    """A short fingerprint of a set of normalised queue configs."""
    return hashlib.sha1(json.dumps(queues, sort_keys=True).encode()).hexdigest()[:16]


def load_configs(directory: str | Path) -> dict[str, dict[str, Any]]:
    """The queue configs of ``directory``; a ConfigError naming file, queue and field of every problem."""
    queues, failures = load_dir(directory)
    if failures:
        raise ConfigError(*(m for messages in failures.values() for m in messages))
    return queues


def sub_queues(config: Mapping[str, Any]) -> dict[str, int]:
    """The full names (``parent.sub``) of a normalised config's sub-queues, with their priorities."""
    return {sub_queue_name(config["name"], sub["name"]): sub["priority"] for sub in config["sub_queues"]}

"""The JSON Schemas of ``schemas/``, loaded and compiled once per process.

A failure becomes a :class:`runqy.errors.ValidationError` with one message per
problem, each naming the JSON path of the field; the schema itself is never
echoed back.
"""

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource

from runqy.errors import ValidationError

#: The checkout's schemas/, inside the package (setup.cfg says how).
SCHEMA_DIR = Path(__file__).parent / "schemas"
_MAX_SHOWN = 80


@functools.cache
def _registry() -> Registry:
    resources = [(path.name, Resource.from_contents(json.loads(path.read_text())))
                 for path in sorted(SCHEMA_DIR.glob("*.json"))]
    return Registry().with_resources(resources)


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Any:
    """``pattern`` as JSON Schema means it: ``$`` does not match before a final newline."""
    if not validator.is_type(instance, "string"):
        return
    if re.search(pattern, instance) is None or (pattern.endswith("$") and instance.endswith("\n")):
        yield jsonschema.ValidationError("%r does not match %r" % (instance, pattern))


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def _inlined(node: Any, base: str) -> Any:
    """``node`` with every ``$ref`` to another file replaced by what it points at.

    Resolving a ``$ref`` costs more than most checks it leads to, and the files'
    refs never loop, so they are resolved once here instead of on every request.
    Keywords beside a ``$ref`` still apply, as JSON Schema 2020-12 says.
    """
    if isinstance(node, list):
        return [_inlined(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _inlined(value, base) for key, value in node.items() if key != "$ref"}
    ref = node.get("$ref")
    if ref is None:
        return out
    document, _, pointer = ref.partition("#")
    document = document or base
    target = _registry().contents(document)
    for part in filter(None, pointer.split("/")):
        target = target[part]
    return {**_inlined(target, document), **out}


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """The compiled validator of ``schemas/<name>.json``."""
    schema = _inlined(_registry().contents(name + ".json"), name + ".json")
    return _Validator(schema, format_checker=_Validator.FORMAT_CHECKER)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _json_type(value: Any) -> str:
    for py, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                     (list, "array"), (dict, "object")):
        if isinstance(value, py):
            return name
    return "null"


def describe(error: jsonschema.ValidationError) -> str:
    """One readable line for one schema failure: ``<json path>: <problem>``."""
    kind, value, arg = error.validator, error.instance, error.validator_value
    if kind == "pattern":
        problem = "%s is not a valid %s" % (_shown(value), error.schema.get("title", "value"))
    elif kind == "type":
        problem = "expected %s, got %s" % (arg if isinstance(arg, str) else " or ".join(arg),
                                           _json_type(value))
    elif kind in ("maxItems", "minItems"):
        problem = "must hold %s %d item%s (got %d)" % (
            "at most" if kind == "maxItems" else "at least", arg, "" if arg == 1 else "s", len(value))
    elif kind in ("maxLength", "minLength"):
        problem = "must be %s %d characters long" % ("at most" if kind == "maxLength" else "at least", arg)
    elif kind == "enum":
        problem = "%s is not one of %s" % (_shown(value), ", ".join(map(str, arg)))
    elif kind in ("anyOf", "oneOf") and "title" in error.schema:
        problem = "%s is not a valid %s" % (_shown(value), error.schema["title"])
    elif kind == "not":
        problem = "%s is reserved" % _shown(value)
    elif kind in ("required", "additionalProperties", "minimum", "maximum", "format"):
        problem = error.message
    else:
        problem = "%s is not valid here" % _shown(value)
    return "%s: %s" % (error.json_path, problem)


def errors(name: str, instance: Any) -> list[str]:
    """Every problem of ``instance`` against schema ``name``, in document order."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [describe(error) for error in found]


@functools.cache
def _fast(name: str) -> Any:
    """A native validator of ``schemas/<name>.json`` that only says yes or no, some 30 times faster.

    It checks formats too, so it is never more lenient than :func:`validator`: when it
    says no, the Python validator has the last word and says why.
    """
    schema = _inlined(_registry().contents(name + ".json"), name + ".json")
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def validate(name: str, instance: Any) -> None:
    """Raise ValidationError listing every problem of ``instance``."""
    if _fast(name).is_valid(instance):
        return
    problems = errors(name, instance)
    if problems:
        raise ValidationError(*problems)


def compile_all() -> None:
    """Compile every schema up front (called once at start-up)."""
    for path in SCHEMA_DIR.glob("*.json"):
        validator(path.stem)
        _fast(path.stem)


@functools.cache
def _definition(name: str) -> jsonschema.protocols.Validator:
    return _Validator(_inlined({"$ref": "common.json#/$defs/" + name}, "common.json"))


def check_param(definition: str, value: str, label: str) -> None:
    """Validate a URL path or query parameter against ``common.json#/$defs/<definition>``."""
    for error in _definition(definition).iter_errors(value):
        raise ValidationError("%s: %s" % (label, describe(error).split(": ", 1)[1]))

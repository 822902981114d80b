"""openapi.yaml: a valid OpenAPI 3.1 document that matches the routes the app serves.

The request bodies of the document are the JSON Schema files of ``schemas/``
that the server validates with; these tests make sure every reference
resolves, that every route and method of the falcon router is documented (and
nothing else), that public and protected routes are marked as such, and that
the document's examples are valid against their own schemas.
"""

import re
from pathlib import Path
from urllib.parse import urljoin

import falcon
import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from runqy import validation
from runqy.app import create_app
from tests.conftest import ROOT

DOCUMENT_PATH = ROOT / "openapi.yaml"
DOCUMENT_URI = DOCUMENT_PATH.as_uri()
SCHEMA_DIR_URI = urljoin(DOCUMENT_URI, "schemas/")
#: The schema files the server validates with, where the checkout keeps them (runqy/schemas links there).
SCHEMA_DIR = validation.SCHEMA_DIR.resolve()
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOCUMENT_PATH.read_text())


@pytest.fixture(scope="module")
def registry(document) -> Registry:
    """The document and every schema file, each under its own file URI."""
    resources = [(DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012))]
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        resources.append((path.as_uri(), Resource.from_contents(yaml.safe_load(path.read_text()))))
    return Registry().with_resources(resources)


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def lookup(document: dict, pointer: str):
    node = document
    for token in pointer.lstrip("/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def follow(document: dict, pointer: str) -> tuple[dict, str]:
    """The object at ``pointer`` after following its local ``$ref`` chain, and its own pointer."""
    node = lookup(document, pointer)
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        pointer = node["$ref"][1:]
        node = lookup(document, pointer)
    return node, pointer


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


#: A falcon field converter (``{page:path}``), which OpenAPI's path templates do not have.
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def served_routes(app: falcon.App) -> dict[tuple[str, str], object]:
    """(uri_template, METHOD) -> resource for every responder the resources implement.

    falcon fills each node's method_map with default responders (405, and the
    automatic OPTIONS) for what a resource does not implement; those are not
    bound to the resource and are left out, as is OPTIONS.
    """
    found = {}

    def walk(nodes) -> None:
        for node in nodes:
            if node.resource is not None:
                for method, responder in node.method_map.items():
                    if method != "OPTIONS" and getattr(responder, "__self__", None) is node.resource:
                        found[(_CONVERTER.sub(r"{\1}", node.uri_template), method)] = node.resource
            walk(node.children)

    walk(app._router._roots)
    return found


def all_refs(node, pointer: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield pointer, value
            else:
                yield from all_refs(value, "%s/%s" % (pointer, escape(str(key))))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from all_refs(value, "%s/%d" % (pointer, i))


def test_document_is_a_valid_openapi_3_1_document(document):
    assert document["openapi"] == "3.1.0"
    validate(document, base_uri=DOCUMENT_URI)


def test_every_ref_of_the_document_and_of_the_schema_files_resolves(document, registry):
    resolver = registry.resolver(DOCUMENT_URI)
    refs = list(all_refs(document))
    assert len(refs) > 100
    for where, ref in refs:
        try:
            resolver.lookup(ref)
        except Exception as exc:  # noqa: BLE001 - report which reference is broken
            pytest.fail("%s: $ref %r does not resolve: %s" % (where, ref, exc))
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        file_resolver = registry.resolver(path.as_uri())
        for where, ref in all_refs(yaml.safe_load(path.read_text())):
            file_resolver.lookup(ref)


def test_request_bodies_are_the_schema_files_the_server_validates_with(document):
    assert SCHEMA_DIR == ROOT / "schemas"
    bodies = {}
    for path, method, operation in operations(document):
        if "requestBody" in operation:
            body, _ = follow(document, "/paths/%s/%s/requestBody" % (escape(path), method))
            bodies["%s %s" % (method.upper(), path)] = body["content"]["application/json"]["schema"]["$ref"]
    assert bodies == {
        "POST /worker/register": "schemas/register.json",
        "POST /queue/add": "schemas/enqueue.json",
        "POST /queue/add-batch": "schemas/enqueue_batch.json",
        "POST /api/cli/tasks": "schemas/enqueue.json",
        "POST /api/cli/configs": "schemas/queue_config.json",
        "POST /api/vaults": "schemas/vault.json",
        "POST /api/vaults/{name}/entries": "schemas/vault_entry.json",
        "POST /monitoring/session": "schemas/session.json",
    }
    for ref in bodies.values():
        assert (ROOT / ref).is_file()


def test_every_route_and_method_the_app_serves_is_documented_and_nothing_else(settings, document):
    served = set(served_routes(create_app(settings)))
    documented = {(path, method.upper()) for path, method, _ in operations(document)}
    assert len(served) == 43
    assert sorted(served - documented) == [], "served but not documented"
    assert sorted(documented - served) == [], "documented but not served"


def test_public_routes_and_only_they_are_marked_security_empty(settings, document):
    routes = served_routes(create_app(settings))
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyAuth"] == {**schemes["apiKeyAuth"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    for (path, method), resource in routes.items():
        operation = document["paths"][path][method.lower()]
        public = getattr(resource, "auth_roles", None) is None
        if public:
            assert operation.get("security") == [], "%s %s is public" % (method, path)
        else:
            assert "security" not in operation, "%s %s needs a key" % (method, path)


def test_every_operation_documents_its_error_statuses(document):
    for path, method, operation in operations(document):
        label = "%s %s" % (method.upper(), path)
        statuses = set(operation["responses"])
        assert {"414", "500"} <= statuses, label
        assert any(s.startswith("2") or s.startswith("3") for s in statuses), label
        if operation.get("security") != []:
            assert {"401", "403", "503"} <= statuses, label
        if "requestBody" in operation:
            assert {"400", "413"} <= statuses, label
        if "{" in path:
            assert "404" in statuses, label
        parameters = [follow(document, p["$ref"][1:])[0] if "$ref" in p else p for p in operation.get("parameters", [])]
        if any(p["in"] == "query" for p in parameters):
            assert "400" in statuses, label


def test_every_error_answer_is_the_errors_schema_except_readiness(document):
    for path, method, operation in operations(document):
        for status in operation["responses"]:
            if status[0] not in "45" or (path, status) == ("/healthz", "503"):
                continue
            response, _ = follow(document, "/paths/%s/%s/responses/%s" % (escape(path), method, status))
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Errors"}, "%s %s %s" % (method, path, status)


def test_every_operation_has_a_tag_an_id_and_a_summary(document):
    tags = {tag["name"] for tag in document["tags"]}
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(document):
        assert operation["summary"] and len(operation["tags"]) == 1 and operation["tags"][0] in tags, path


def _examples(media: dict) -> list:
    found = [media["example"]] if "example" in media else []
    return found + [example["value"] for example in media.get("examples", {}).values()]


def test_request_examples_pass_the_servers_own_validation(document):
    checked = 0
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        body, _ = follow(document, "/paths/%s/%s/requestBody" % (escape(path), method))
        media = body["content"]["application/json"]
        name = Path(media["schema"]["$ref"]).stem
        for example in _examples(media):
            assert validation.errors(name, example) == [], "%s %s" % (method, path)
            checked += 1
    assert checked >= 7


def test_response_examples_match_their_schemas(document, registry):
    checked = 0
    for path, method, operation in operations(document):
        for status in operation["responses"]:
            response, pointer = follow(document, "/paths/%s/%s/responses/%s" % (escape(path), method, status))
            media = response.get("content", {}).get("application/json")
            if media is None:
                continue
            schema = {"$ref": "%s#%s/content/application~1json/schema" % (DOCUMENT_URI, pointer)}
            checker = jsonschema.Draft202012Validator(schema, registry=registry,
                                                      format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            for example in _examples(media):
                problems = [e.message for e in checker.iter_errors(example)]
                assert problems == [], "%s %s %s: %s" % (method.upper(), path, status, problems)
                checked += 1
    assert checked >= 30

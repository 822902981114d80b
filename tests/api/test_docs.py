"""The served contract and its browser (runqy/resources/docs.py): GET /openapi.yaml; the Swagger
page itself is driven in a real browser by tests/e2e/test_swagger_browser.py."""

import yaml

from runqy.resources import docs
from tests.conftest import ROOT

DOCUMENT_PATH = ROOT / "openapi.yaml"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def test_openapi_yaml_is_served_byte_for_byte_as_yaml(client):
    res = client.simulate_get("/openapi.yaml")
    assert res.status_code == 200
    assert res.headers["Content-Type"].split(";")[0].strip() in YAML_TYPES
    assert res.content == DOCUMENT_PATH.read_bytes()
    assert docs.OPENAPI_PATH.resolve() == DOCUMENT_PATH
    assert yaml.safe_load(res.content)["openapi"] == "3.1.0"

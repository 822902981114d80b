"""The API contract and its interactive page: /openapi.yaml and /swagger/index.html.

Swagger UI's assets come from the swagger-ui-bundle package installed with
runqy, so the page works with no internet access.
"""

from pathlib import Path

import falcon
import swagger_ui_bundle

#: The checkout's openapi.yaml, inside the package (setup.cfg says how).
OPENAPI_PATH = Path(__file__).parent.parent / "openapi.yaml"
SWAGGER_ASSETS = Path(str(swagger_ui_bundle.swagger_ui_path))

_INDEX = b"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>runqy API</title>
  <link rel="stylesheet" href="swagger-ui.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.yaml",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


class OpenAPI:
    """GET /openapi.yaml: the contract, read once."""

    def __init__(self) -> None:
        self._document = OPENAPI_PATH.read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/yaml"
        resp.data = self._document


class SwaggerIndex:
    """GET /swagger/index.html: Swagger UI pointed at /openapi.yaml."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.data = _INDEX


class SwaggerRedirect:
    """GET /swagger: to the page."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPMovedPermanently("/swagger/index.html")

"""/docs that work offline: Swagger UI served by the API itself, an Authorize button, real examples.

FastAPI's default /docs loads Swagger UI from a CDN, so the page is blank on a machine without
internet. The assets come from the `swagger-ui-bundle-v2` package and are served under
/docs/assets. The OpenAPI document gets a bearer security scheme (Swagger UI sends the token of
its Authorize dialog, and ignores header parameters named Authorization) and request examples
that a reader can send as they are.
"""
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
BEARER = "bearerAuth"
EXAMPLE_SHA = "9f2c4e61b8d0a7f35e1c2b9d4a6f8e0c3b5d7a9e1f2c4b6d8e0a2c4e6f8b0d2a"

# Request bodies as an author would send them (schema name → examples).
EXAMPLES: dict[str, list[dict]] = {
    "SubmissionCreate": [{
        "model_name": "my-model", "checkpoint_sha256": EXAMPLE_SHA, "suite": "language-core",
        "hardware_class": "cpu", "precision": "float32", "tasks": ["world_facts", "arithmetic_mc"],
        "license": "Apache-2.0", "webhook_url": "https://example.org/evalboard-hook",
        "webhook_secret": "a-secret-of-16-or-more-characters"}],
    "UploadCreate": [{"family": "causal-lm", "size": 734003200, "sha256": EXAMPLE_SHA}],
    "UserCreate": [{"name": "alice", "role": "author"}],
    "FlagRequest": [{"reason": "scores copied from another model's card"}],
}

# For operations whose function has no docstring (a docstring, where added, wins).
DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("get", "/api/v1/health"): "200 when PostgreSQL and Redis answer, else 503 naming the one that is down.",
    ("get", "/api/v1/hardware-classes"): "The hardware class names a submission can ask for (GET /hardware shows "
                                         "their workers).",
    ("post", "/api/v1/submissions"): "Submit an uploaded checkpoint (or a pinned hub model) to a suite. Everything "
                                     "is checked before anything is written: a 4xx names the field at fault. 201 with "
                                     "the new submission; 200 with the existing one when the same checkpoint, suite, "
                                     "precision and hardware class were submitted before. POST /submissions/check "
                                     "makes the same checks before the checkpoint is uploaded.",
    ("get", "/api/v1/submissions/{submission_id}"): "A submission and each of its runs: status, stage, progress, "
                                                    "queue position, estimated time, scores, and for a failure its "
                                                    "error and whose fault it was.",
    ("get", "/api/v1/admin/users"): "Every user with their role and number of active tokens (admin only).",
    ("post", "/api/v1/admin/users"): "Create a user (admin only); issue their token with "
                                     "POST /admin/users/{name}/tokens.",
    ("post", "/api/v1/admin/models/{model_id}/flag"): "Flag a model: it leaves the default board and the reason is "
                                                      "shown beside it (admin only).",
    ("delete", "/api/v1/admin/models/{model_id}/flag"): "Lift a model's flag (admin only).",
    ("post", "/api/v1/admin/models/{model_id}/hide"): "Hide a model from every public page (admin only).",
    ("delete", "/api/v1/admin/models/{model_id}/hide"): "Show a hidden model again (admin only).",
    ("get", "/metrics"): "Prometheus metrics: queue depth per hardware class, runs by status, retries, live "
                         "workers and run durations.",
}


def swagger_assets() -> Path:
    import swagger_ui_bundle
    return Path(swagger_ui_bundle.swagger_ui_path)


def install(app: FastAPI) -> None:
    """Serve /docs from local assets and document auth and examples. The app is made with docs_url=None."""
    app.mount(ASSETS, StaticFiles(directory=swagger_assets()), name="swagger-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
                                   oauth2_redirect_url=oauth2_redirect,
                                   swagger_ui_parameters={"persistAuthorization": True})

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi


def document(app: FastAPI) -> dict:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "evb_… token",
        "description": "An API token from `evalboard token create --user NAME` (or POST /admin/users/{name}/tokens)."}
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            if not operation.get("description") and (method, path) in DESCRIPTIONS:
                operation["description"] = DESCRIPTIONS[(method, path)]
            params = operation.get("parameters", [])
            auth = [p for p in params if p.get("in") == "header" and p.get("name", "").lower() == "authorization"]
            if auth:
                # The token is read from this header: documented as the security scheme instead.
                operation["parameters"] = [p for p in params if p not in auth]
                operation["security"] = [{BEARER: []}]
    for name, examples in EXAMPLES.items():
        if name in components.get("schemas", {}):
            components["schemas"][name]["examples"] = examples
    return schema

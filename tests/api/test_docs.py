"""/docs works offline: Swagger UI's assets come from the API itself, the document has a bearer
scheme (the Authorize button) and every operation a description; request examples are real."""
import os
import re

import jsonschema
import pytest

from tests.conftest import make_token

CHROMIUM = "/usr/bin/chromium"


def test_the_docs_page_loads_nothing_from_other_hosts(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    assert all(s.startswith("/") for s in sources), sources  # a blank page offline was the CDN's
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100, source
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"] and len(js.content) > 500_000
    # Assets only: the package's own files beside them are out of reach.
    for escape in ("..%2F..%2F__init__.py", "%2e%2e/%2e%2e/__init__.py", "..%5C..%5C__init__.py"):
        assert client.get(f"/docs/assets/{escape}").status_code == 404, escape
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not offered


def test_the_document_has_a_bearer_scheme_instead_of_an_authorization_parameter(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        **schema["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    operations = [(m, p, op) for p, item in schema["paths"].items() for m, op in item.items()]
    for method, path, op in operations:
        assert not any(p["in"] == "header" and p["name"].lower() == "authorization"
                       for p in op.get("parameters", [])), (method, path)
        assert op.get("description", "").strip(), f"{method.upper()} {path} has no description"
    secured = {(m, p) for m, p, op in operations if op.get("security") == [{"bearerAuth": []}]}
    assert {("post", "/api/v1/submissions"), ("post", "/api/v1/submissions/check"), ("get", "/api/v1/submissions"),
            ("post", "/api/v1/checkpoints"), ("post", "/api/v1/admin/users")} <= secured
    assert ("get", "/api/v1/leaderboard") not in secured


def test_the_submission_example_is_real_and_valid(client, uploaded_checkpoint, auth):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    example = components["SubmissionCreate"]["examples"][0]
    assert example["suite"] == "language-core" and "string" not in example.values()
    resolver = {"components": {"schemas": components}, **components["SubmissionCreate"]}
    jsonschema.validate(example, resolver)
    # Sent as it is (with a checkpoint this user uploaded, and no webhook: example.org is not reached
    # from here), the API accepts it.
    body = {k: v for k, v in example.items() if not k.startswith("webhook")}
    accepted = client.post("/api/v1/submissions", json={**body, "checkpoint_sha256": uploaded_checkpoint["sha256"]},
                           headers=auth)
    assert accepted.status_code == 201, accepted.text
    check = components["SubmissionCheck"]["examples"][0]
    assert client.post("/api/v1/submissions/check", json=check, headers=auth).status_code == 200


def test_swagger_ui_renders_with_every_other_host_unreachable(api_url):
    """A browser that can reach only the API draws the operations and the Authorize button."""
    if not os.path.exists(CHROMIUM):  # as tests/leaderboard/test_browser.py: a broken setup, not a skip
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make system-tools)", pytrace=False)
    from playwright.sync_api import sync_playwright
    token = make_token("docs-reader")
    foreign = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()

            def only_the_api(route):
                if route.request.url.startswith(api_url):
                    return route.continue_()
                foreign.append(route.request.url)
                return route.abort()
            page.route("**/*", only_the_api)
            page.goto(f"{api_url}/docs")
            page.locator('[data-path="/api/v1/submissions/check"]').first.wait_for(timeout=30_000)
            page.locator(".scheme-container button.authorize").click()
            page.locator(".auth-container input").first.fill(token)
            page.locator(".auth-btn-wrapper button.authorize").click()
            page.locator(".auth-btn-wrapper button.btn-done").click()
            # The padlock closed: the token is sent with every "Try it out".
            page.locator(".scheme-container button.authorize.locked").wait_for(timeout=5_000)
        finally:
            browser.close()
    assert foreign == []

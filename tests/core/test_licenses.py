"""Licences are SPDX identifiers (or `other` with an https link), checked where an author names one."""
import pytest

from core.errors import InvalidRequestError
from core.licenses import check_license, check_license_link

HOSTILE = "[x](http://evil.example) ![t](http://evil.example/t.png) www.evil.example/login"


@pytest.mark.parametrize("given, stored", [("apache-2.0", "Apache-2.0"), (" MIT ", "MIT"), ("cc-by-4.0", "CC-BY-4.0"),
                                           ("OTHER", "other"), (None, None), ("", None)])
def test_spdx_identifiers_are_stored_in_their_canonical_spelling(given, stored):
    assert check_license(given) == stored


@pytest.mark.parametrize("value", [HOSTILE, "<img src=x onerror=alert(1)>", "MIT\nwww.evil.example", "Apache 2",
                                   "=HYPERLINK(\"http://evil.example\")"])
def test_anything_else_is_refused_naming_the_field(value):
    with pytest.raises(InvalidRequestError) as refused:
        check_license(value)
    assert refused.value.field == "license" and "SPDX" in refused.value.message


def test_other_needs_an_https_link_and_only_other_takes_one():
    assert check_license_link("https://example.org/LICENSE", "other") == "https://example.org/LICENSE"
    for link, license in [(None, "other"), ("http://example.org/L", "other"), ("javascript:alert(1)", "other"),
                          ("https://example.org/a b", "other"), ("https://example.org/L", "MIT")]:
        with pytest.raises(InvalidRequestError):
            check_license_link(link, license)


def test_a_submission_with_a_markup_licence_is_refused_before_anything_is_written(client, auth, uploaded_checkpoint):
    body = {"model_name": "tiny", "checkpoint_sha256": uploaded_checkpoint["sha256"], "suite": "language-core",
            "license": HOSTILE}
    response = client.post("/api/v1/submissions", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "license"
    assert "SPDX" in response.json()["detail"]
    assert client.get("/api/v1/submissions", headers=auth).json()["items"] == []
    body["license"] = "apache-2.0"
    assert client.post("/api/v1/submissions", json=body, headers=auth).status_code == 201
    from sqlmodel import select

    from core.db import session_scope
    from core.models import Model
    with session_scope() as s:
        assert s.exec(select(Model.license)).all() == ["Apache-2.0"]  # one spelling per licence on the board

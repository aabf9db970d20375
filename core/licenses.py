"""Model licences are SPDX identifiers from an allow-list, or `other` with a link shown as text.

A licence is shown to every visitor of the board and filtered on, so it is a short known word,
never free text: free text was rendered as Markdown (a link and a tracking image from an
author-chosen URL). Matching is case-insensitive (model cards write `apache-2.0`); what is stored
is the canonical SPDX spelling, so the board's licence filter sees one value per licence.
"""
import urllib.parse
from typing import Annotated

from pydantic import AfterValidator

from core.errors import InvalidRequestError

OTHER = "other"

# SPDX identifiers (https://spdx.org/licenses/) seen on model, code and data releases.
SPDX_IDS = (
    "0BSD", "AFL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-2.0", "Artistic-2.0", "BSD-2-Clause",
    "BSD-3-Clause", "BSD-3-Clause-Clear", "BSL-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0",
    "CC-BY-NC-2.0", "CC-BY-NC-3.0", "CC-BY-NC-4.0", "CC-BY-NC-ND-3.0", "CC-BY-NC-ND-4.0", "CC-BY-NC-SA-2.0",
    "CC-BY-NC-SA-3.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0",
    "CDLA-Permissive-1.0", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0", "CreativeML-OpenRAIL-M", "ECL-2.0",
    "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only",
    "GPL-3.0-or-later", "ISC", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later",
    "LPPL-1.3c", "MIT", "MIT-0", "MPL-2.0", "MS-PL", "NCSA", "ODbL-1.0", "ODC-By-1.0", "OFL-1.1", "OSL-3.0",
    "PDDL-1.0", "PostgreSQL", "Unlicense", "UPL-1.0", "WTFPL", "Zlib",
)
_CANONICAL = {name.lower(): name for name in (*SPDX_IDS, OTHER)}
MAX_LINK = 512


def check_license(value: str | None, *, field: str = "license") -> str | None:
    """The canonical SPDX identifier (or `other`) for `value`, None for none given; 422 otherwise."""
    if value is None or not value.strip():
        return None
    canonical = _CANONICAL.get(value.strip().lower())
    if canonical is None:
        raise InvalidRequestError("license is not an SPDX identifier this service knows (e.g. Apache-2.0, MIT, "
                                  "CC-BY-4.0); for any other licence give 'other' and a link to its text",
                                  field=field)
    return canonical


def check_license_link(link: str | None, license: str | None, *, field: str = "license_link") -> str | None:
    """The link to a licence's text, accepted with `other` only: an https URL, stored and shown as text."""
    if link is None or not link.strip():
        if license == OTHER:
            raise InvalidRequestError("license 'other' needs a license_link to the licence text", field=field)
        return None
    if license != OTHER:
        raise InvalidRequestError("license_link is for license 'other'; an SPDX licence needs no link", field=field)
    link = link.strip()
    parsed = urllib.parse.urlsplit(link)
    if (len(link) > MAX_LINK or parsed.scheme != "https" or not parsed.hostname or not link.isprintable()
            or any(c.isspace() for c in link)):
        raise InvalidRequestError(f"license_link must be an https:// URL of at most {MAX_LINK} characters",
                                  field=field)
    return link


def _validated(value: str | None) -> str | None:
    try:
        return check_license(value)
    except InvalidRequestError as exc:
        raise ValueError(exc.message) from None  # pydantic reports it as a 422 on the field


# For request schemas: `license: SpdxLicense | None = None` stores the canonical identifier.
SpdxLicense = Annotated[str, AfterValidator(_validated)]

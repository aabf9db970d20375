"""The licence a model folder states: a LICENSE file's text or a card's `license:`, as an SPDX id.

The board shows a model's licence; an author who ships a LICENSE file instead of naming the
licence in the submission should see it there too. A text recognised here maps to its SPDX
identifier, a declared `SPDX-License-Identifier:` line or card value to core.licenses' canonical
spelling, and any other licence to `other`. Nothing of the text itself is kept or shown.
"""
import re
from pathlib import Path

from core.errors import InvalidRequestError
from core.licenses import OTHER, check_license

LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING")  # as core.storage accepts them
_READ_AT_MOST = 64 * 1024  # a licence's opening names it; a huge file is not read whole
# Hugging Face cards' short forms of licences SPDX spells with -only.
_HUB_ALIASES = {"gpl-2.0": "GPL-2.0-only", "gpl-3.0": "GPL-3.0-only", "lgpl-2.1": "LGPL-2.1-only",
                "lgpl-3.0": "LGPL-3.0-only", "agpl-3.0": "AGPL-3.0-only"}

# (SPDX id, phrases that must all appear, phrases that must not): first match wins.
_TEXTS = (
    ("Apache-2.0", ("apache license", "version 2.0"), ()),
    ("MIT", ("permission is hereby granted, free of charge",), ()),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name"), ()),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",), ()),
    ("CC-BY-NC-SA-4.0", ("attribution-noncommercial-sharealike 4.0",), ()),
    ("CC-BY-NC-4.0", ("attribution-noncommercial 4.0",), ()),
    ("CC-BY-SA-4.0", ("attribution-sharealike 4.0",), ()),
    ("CC-BY-4.0", ("attribution 4.0 international",), ("noncommercial", "sharealike")),
    ("CC0-1.0", ("cc0 1.0 universal",), ()),
    ("GPL-3.0-only", ("gnu general public license", "version 3"), ("lesser", "affero")),
    ("MPL-2.0", ("mozilla public license", "version 2.0"), ()),
)
_SPDX_LINE = re.compile(r"SPDX-License-Identifier:\s*(.+)")


def spdx_id(value: str) -> str:
    """The canonical SPDX id of a declared licence (card or SPDX line), `other` when this service knows none."""
    value = _HUB_ALIASES.get(value.strip().lower(), value)
    try:
        return check_license(value) or OTHER
    except InvalidRequestError:
        return OTHER


def from_text(text: str) -> str:
    """The SPDX id of a licence text: its SPDX-License-Identifier line, a first line that is an id, a
    recognised text, else `other`."""
    declared = _SPDX_LINE.search(text)
    if declared:
        return spdx_id(declared.group(1))
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if spdx_id(first_line) != OTHER:
        return spdx_id(first_line)  # a file that is just the identifier ("Apache-2.0")
    folded = " ".join(text.lower().split())
    for spdx, needed, excluded in _TEXTS:
        if all(p in folded for p in needed) and not any(p in folded for p in excluded):
            return spdx
    return OTHER


def from_card(readme: Path) -> str | None:
    """The `license:` of a model card's YAML front matter (an SPDX id, or `other`), None if it names none."""
    try:
        text = _read(readme)
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    for line in text.split("---")[1].splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip() == "license":
            return spdx_id(value.strip().strip("'\""))
    return None


def folder_license(folder: Path) -> str | None:
    """The licence a model folder states (LICENSE file first, then the card), None if it states none."""
    for name in LICENSE_FILES:
        path = folder / name
        if path.is_file():
            try:
                return from_text(_read(path))
            except OSError:
                return OTHER
    return from_card(folder / "README.md")


def local_upload_folder(sha256: str) -> Path:
    from core.config import get_settings
    from core.storage import _model_root
    folder = get_settings().artifact_dir / "checkpoints" / sha256
    return _model_root(folder) if folder.is_dir() else folder


def checkpoint_license(storage_uri: str | None) -> str | None:
    """The licence of a stored checkpoint's unpacked folder (hub checkpoints have none here)."""
    from core.artifact_store import key_of
    if not storage_uri or "://" in storage_uri:
        return None
    key = key_of(storage_uri)
    # The API keeps its own unpacked copy of each upload beside the store (core/storage.py).
    folder = local_upload_folder(key.rsplit("/", 1)[-1]) if key else Path(storage_uri)
    return folder_license(folder) if folder.is_dir() else None


def spdx_license_file(license_id: str) -> str:
    """A LICENSE file that names a licence by its SPDX id (the CLI's --license for a folder without one).

    Raises InvalidRequestError for anything but a known id: nothing else is written into the file."""
    license_id = check_license(license_id)
    if license_id is None:
        raise InvalidRequestError("no licence given", field="license")
    return (f"SPDX-License-Identifier: {license_id}\n\n"
            f"The author declared this licence when submitting the model (evalboard submit --license).\n")


def _read(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(_READ_AT_MOST).decode("utf-8", errors="replace")

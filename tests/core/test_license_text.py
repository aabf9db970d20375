"""A model folder's LICENSE file or card names its licence as an SPDX id; nothing of the text is kept."""
import pytest

from core.errors import InvalidRequestError
from core.license_text import folder_license, from_text, spdx_license_file

APACHE = "                                 Apache License\n                           Version 2.0, January 2004\n"
BSD = ("Redistribution and use in source and binary forms, with or without modification, are permitted ...\n"
       "3. Neither the name of the copyright holder nor the names of its contributors may be used ...")
CC_BY = "Creative Commons Attribution 4.0 International Public License\nBy exercising the Licensed Rights ..."
CC_BY_NC = "Creative Commons Attribution-NonCommercial 4.0 International Public License"


@pytest.mark.parametrize("text, spdx", [
    (APACHE, "Apache-2.0"),
    ("MIT License\n\nPermission is hereby granted, free of charge, to any person", "MIT"),
    (BSD, "BSD-3-Clause"),
    (BSD.split("\n")[0], "BSD-2-Clause"),
    (CC_BY, "CC-BY-4.0"),
    (CC_BY_NC, "CC-BY-NC-4.0"),
    ("// SPDX-License-Identifier: apache-2.0\n", "Apache-2.0"),
    ("Apache-2.0\n", "Apache-2.0"),
    ("All rights reserved. Ask us.", "other"),
    # Hostile texts are no licence this service knows: `other`, and nothing of them is kept.
    ("SPDX-License-Identifier: [MIT](https://evil.example/t.png)", "other"),
    ("<script>alert(1)</script>", "other"),
])
def test_licence_texts_map_to_spdx_ids(text, spdx):
    assert from_text(text) == spdx


def test_a_folder_states_its_licence_by_file_then_card(tmp_path):
    assert folder_license(tmp_path) is None
    (tmp_path / "README.md").write_text("---\nlicense: gpl-3.0\n---\n# a model\n")
    assert folder_license(tmp_path) == "GPL-3.0-only"
    (tmp_path / "README.md").write_text("---\nlicense: '[x](javascript:alert(1))'\n---\n")
    assert folder_license(tmp_path) == "other"
    (tmp_path / "LICENSE").write_text(APACHE)
    assert folder_license(tmp_path) == "Apache-2.0"


def test_a_huge_licence_file_is_read_only_at_its_start(tmp_path):
    with open(tmp_path / "LICENSE", "w") as f:
        f.write(APACHE)
        f.write("x" * (64 << 20))
    assert folder_license(tmp_path) == "Apache-2.0"


def test_only_a_known_id_is_written_into_a_licence_file():
    assert spdx_license_file("cc-by-4.0").startswith("SPDX-License-Identifier: CC-BY-4.0\n")
    with pytest.raises(InvalidRequestError):
        spdx_license_file("MIT\nEvil: injected")

"""`evalboard submit` checks everything it can before a byte of the checkpoint is sent, and the
licence an author states (a --license, or a LICENSE file) is the one the board shows."""
import shutil

import httpx
import psycopg

from core.license_text import local_upload_folder
from tests.cli.test_commands import evalboard
from tests.conftest import DATABASE_URL, make_token

MIT = """MIT License

Copyright (c) 2026 Dana

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, ...
"""


def stored_checkpoints() -> int:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT count(*) FROM checkpoint").fetchone()[0]


def model_license(api_url: str, name: str) -> str | None:
    with psycopg.connect(DATABASE_URL) as conn:
        model_id = conn.execute("SELECT id FROM model WHERE name = %s", (name,)).fetchone()[0]
    return httpx.get(f"{api_url}/api/v1/models/{model_id}").json()["model"]["license"]


def folder_without_licence(tiny_lm_dir, tmp_path):
    folder = tmp_path / "unlicensed"
    shutil.copytree(tiny_lm_dir, folder)
    (folder / "LICENSE").unlink()
    return folder


def test_a_typo_is_refused_before_anything_is_uploaded(api_url, tiny_lm_dir):
    token = make_token("gina")
    for args, reason in ((["--suite", "language-cor"], "unknown suite 'language-cor'"),
                         (["--suite", "language-core", "--task", "word_facts"], "has no task 'word_facts'"),
                         (["--suite", "language-core", "--hardware", "gpu-h200"], "unknown hardware class"),
                         (["--suite", "clip-core"], "evaluates clip models, but the checkpoint is causal-lm")):
        refused = evalboard("submit", str(tiny_lm_dir), *args, token=token, api_url=api_url)
        assert refused.returncode == 2, refused
        assert reason in refused.stderr and "Traceback" not in refused.stderr
        assert "uploading" not in refused.stderr  # the upload never started
    bad_token = evalboard("submit", str(tiny_lm_dir), "--suite", "language-core", token="evb_not-a-token",
                          api_url=api_url)
    assert bad_token.returncode == 2 and "not valid" in bad_token.stderr
    assert stored_checkpoints() == 0


def test_a_folder_without_a_licence_needs_license_and_gets_it(api_url, tiny_lm_dir, tmp_path):
    token, folder = make_token("hana"), folder_without_licence(tiny_lm_dir, tmp_path)
    missing = evalboard("submit", str(folder), "--suite", "language-core", token=token, api_url=api_url)
    assert missing.returncode == 2 and "--license" in missing.stderr and "has no licence" in missing.stderr
    markup = evalboard("submit", str(folder), "--suite", "language-core", "--license",
                       "[MIT](https://evil.example/t.png)", token=token, api_url=api_url)
    assert markup.returncode == 2 and "not an SPDX identifier" in markup.stderr
    assert stored_checkpoints() == 0

    accepted = evalboard("submit", str(folder), "--suite", "language-core", "--name", "hana-model", "--task",
                         "world_facts", "--license", "mit", token=token, api_url=api_url)
    assert accepted.returncode == 0, accepted.stderr
    assert model_license(api_url, "hana-model") == "MIT"  # SPDX's spelling
    # The licence is part of the checkpoint as uploaded (the folder itself is left as it was).
    with psycopg.connect(DATABASE_URL) as conn:
        sha256 = conn.execute("SELECT sha256 FROM checkpoint").fetchone()[0]
    assert "SPDX-License-Identifier: MIT" in (local_upload_folder(sha256) / "LICENSE").read_text()
    assert not (folder / "LICENSE").exists()


def test_a_licence_file_appears_on_the_board(api_url, tiny_lm_dir, tmp_path):
    token = make_token("ines")
    plain_id = evalboard("submit", str(tiny_lm_dir), "--suite", "language-core", "--name", "ines-tiny", "--task",
                         "world_facts", token=token, api_url=api_url)  # its LICENSE reads "Apache-2.0"
    assert plain_id.returncode == 0, plain_id.stderr
    assert model_license(api_url, "ines-tiny") == "Apache-2.0"

    folder = folder_without_licence(tiny_lm_dir, tmp_path)
    (folder / "LICENSE").write_text(MIT)
    full_text = evalboard("submit", str(folder), "--suite", "language-core", "--name", "ines-mit", "--task",
                          "world_facts", token=token, api_url=api_url)
    assert full_text.returncode == 0, full_text.stderr
    assert model_license(api_url, "ines-mit") == "MIT"

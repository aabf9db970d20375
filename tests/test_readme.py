"""The README's command blocks: which run in CI and how they are run (tests/readme_blocks.py).

The run itself, every unmarked block in order against a running `evalboard up`, is
tests/cli/test_up.py::test_readme_command_blocks_run_in_order_against_up: it shares that
test's instance, since starting a second one would cost another minute and a half.
"""
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.readme_blocks import DEFAULT_API, command_blocks, dangling_markers, explain_failure, run_blocks

README = (ROOT / "README.md").read_text()


def test_every_readme_block_is_run_or_says_why_not():
    blocks = command_blocks(README)
    assert dangling_markers(README) == []  # a marker that stands before no block would mark nothing
    skipped = {b.line: b.not_run_reason for b in blocks if b.not_run_reason}
    run = "\n".join(b.text for b in blocks if b.not_run_reason is None)
    # What cannot run here is marked, with its reason: `make run` starts the instance the test
    # itself starts, a worker on another machine needs one.
    assert any("make run" in b.text for b in blocks if b.not_run_reason), skipped
    assert all(len(reason) > 10 for reason in skipped.values()), skipped
    # The author's first hour is run, not marked away: token, submit, status, results, list, cancel, HTTP.
    for step in ("evalboard token create", "evalboard submit", "evalboard status", "evalboard results",
                 "evalboard list", "evalboard cancel", "/api/v1/checkpoints", "/api/v1/submissions"):
        assert step in run, step


SAMPLE = """# A project

<!-- not run in CI: it would start the services itself -->
```bash
exit 7
```

Some text and an output block, which is not a command block:

```
API  http://127.0.0.1:8000/docs
```

1. A step in a list:
   ```bash
   export GREETING=hello
   ```
2. Another:
   ```sh
   test "$GREETING" = hello && echo "api is http://127.0.0.1:8000/x"
   ```
"""


def bash_env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def test_blocks_run_in_order_in_one_session_and_marked_ones_do_not(tmp_path):
    blocks = command_blocks(SAMPLE)
    assert [(b.line, b.not_run_reason) for b in blocks] == [
        (4, "it would start the services itself"), (15, None), (19, None)]
    assert blocks[1].text == "export GREETING=hello"  # the list item's indent is the fence's, not the block's
    run = run_blocks(blocks, api_url="http://127.0.0.1:43210", cwd=tmp_path, env=bash_env(), timeout_s=30)
    # The marked `exit 7` did not run; the export of one block is seen by the next; the README's API
    # address is the instance's.
    assert run.returncode == 0, run.output
    assert "api is http://127.0.0.1:43210/x" in run.output and DEFAULT_API not in run.output


@pytest.mark.parametrize("block, expected", [
    ("true\nfalse\necho never", "exited 1"),          # a failing command fails the run (set -e)
    ("false | cat", "exited 1"),                      # … inside a pipe too (pipefail)
    ("echo $UNSET_IN_README_TEST", "exited 1"),       # … and a variable a block forgot to set (set -u)
    ("sleep 60 & wait", "timed out"),                 # an unmarked block that cannot end here (`make run`)
])
def test_an_unmarked_block_that_cannot_run_fails_naming_its_line(tmp_path, block, expected):
    readme = f"intro\n\n```bash\necho first\n```\n\n```bash\n{block}\n```\n"
    blocks = command_blocks(readme)
    run = run_blocks(blocks, api_url=DEFAULT_API, cwd=tmp_path, env=bash_env(), timeout_s=2)
    assert run.returncode != 0 and run.failed_block() == 7, run
    message = explain_failure(run, blocks)
    assert message.startswith(f"README block at line 7 {expected}") and "not run in CI" in message, message


@pytest.mark.parametrize("readme, problem", [
    ("<!-- not run in CI: -->\n```bash\nmake run\n```\n", "needs its reason"),
    ("```bash\nevalboard list\n", "never closed"),
])
def test_a_marker_without_reason_or_an_open_fence_is_refused(readme, problem):
    with pytest.raises(ValueError, match=problem):
        command_blocks(readme)


def test_a_marker_before_anything_but_a_command_block_is_reported():
    readme = "<!-- not run in CI: an output block -->\n```\nAPI http://x\n```\n"
    assert dangling_markers(readme) == [1]

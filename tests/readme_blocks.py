"""The README's command blocks, as a newcomer would run them after `make run`.

Every fenced ```bash / ```sh / ```shell block of README.md is a command block. A block that cannot run
in CI (it starts the services itself, needs a GPU, a second machine or the network) says so with
`<!-- not run in CI: reason -->` on the line right before its fence; every other block is run, in
README order, in one bash session (`set -euo pipefail`: a variable exported in one block is there in
the next, a failing command fails the run) against a running `evalboard up`. So a README that drifts
from the code fails the suite, and an unmarked block that cannot run fails it too: marking is a
decision someone writes down with its reason, never a default.
"""
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)[ \t]*$")
COMMAND_LANGUAGES = {"bash", "sh", "shell"}
NOT_RUN = re.compile(r"^\s*<!--\s*not run in CI:\s*(?P<reason>.*?)\s*-->\s*$")
# The ports a README written for `make run` names, replaced by those of the instance under test.
DEFAULT_API = "http://127.0.0.1:8000"
BLOCK_MARK = "::readme-block::"


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    text: str
    not_run_reason: str | None  # None: the block is run


def command_blocks(readme: str) -> list[Block]:
    """The command blocks in order, each with the reason it is not run, if it is marked."""
    lines, blocks, i = readme.splitlines(), [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, body, j = opening["indent"], [], i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"README line {i + 1}: a fence that is never closed")
        if opening["lang"] in COMMAND_LANGUAGES:
            marker = NOT_RUN.match(lines[i - 1]) if i > 0 else None
            if marker is not None and not marker["reason"]:
                raise ValueError(f"README line {i}: `not run in CI` needs its reason")
            blocks.append(Block(i + 1, "\n".join(body), marker["reason"] if marker else None))
        i = j + 1
    return blocks


def dangling_markers(readme: str) -> list[int]:
    """Lines of `not run in CI` markers that do not stand right before a command block's fence."""
    lines = readme.splitlines()
    return [n + 1 for n, line in enumerate(lines) if NOT_RUN.match(line)
            and not (n + 1 < len(lines) and (m := FENCE.match(lines[n + 1])) and m["lang"] in COMMAND_LANGUAGES)]


def script_of(blocks: list[Block], api_url: str) -> str:
    """One bash script: each run block announced by its README line, the README's API address replaced."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        if block.not_run_reason is None:
            parts += [f"echo '{BLOCK_MARK}{block.line}'", block.text.replace(DEFAULT_API, api_url)]
    return "\n".join(parts) + "\n"


@dataclass
class ScriptRun:
    returncode: int | None  # None: killed at the time limit
    output: str

    def failed_block(self) -> int | None:
        """The README line of the block that was running when the script stopped."""
        started = re.findall(rf"^{re.escape(BLOCK_MARK)}(\d+)$", self.output, flags=re.M)
        return int(started[-1]) if started else None


def run_blocks(blocks: list[Block], *, api_url: str, cwd: Path, env: dict, timeout_s: float) -> ScriptRun:
    """Run the unmarked blocks in one bash session, killed (with all it started) past timeout_s."""
    proc = subprocess.Popen(["bash", "-c", script_of(blocks, api_url)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        return ScriptRun(proc.returncode, output)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: whatever the block started goes too
        return ScriptRun(None, proc.communicate()[0])


def explain_failure(run: ScriptRun, blocks: list[Block]) -> str:
    line = run.failed_block()
    what = "timed out" if run.returncode is None else f"exited {run.returncode}"
    block = next((b for b in blocks if b.line == line), None)
    return (f"README block at line {line} {what}; if it cannot run in CI, put `<!-- not run in CI: reason -->` "
            f"right before it.\n--- block ---\n{block.text if block else '?'}\n--- output ---\n{run.output[-6000:]}")

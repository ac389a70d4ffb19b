"""The quickstart's code blocks run as written, outside the repository.

Section 2 of docs/quickstart.md builds the collection's tarball from the checkout, installs it into a
directory under a scratch HOME and runs a first playbook from there: no ansible.cfg of the repository,
ANSIBLE_COLLECTIONS_PATH only that directory. Anything the collection needs at run time that the tarball
does not ship (galaxy.yml's build_ignore) fails here, and not on a user's machine. The other sections'
blocks are named in NOT_RUN with the test that runs them instead.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import textwrap

from fixtures.playbooks import REPO, user_environment

QUICKSTART = os.path.join(REPO, "docs", "quickstart.md")

# The section whose blocks this test runs, in one shell, as a reader would type them.
RUN = "2. The collection in your own playbook"

# Sections whose blocks are not run here, and where they do run.
NOT_RUN = {
    "1. The demo on this machine": "`make demo` and `make demo-stop`: `make test` runs both (Makefile, demo-check)",
    "3. Release your own service": (
        "needs your inventory and signed package; tests/integration/test_release_flow.py runs "
        "playbooks/release.yml with release_artifact, release_checksum and release_envelope"
    ),
}

# Directories of the checkout whose every tracked file the collection needs at run time,
SHIPPED = ("meta", "plugins", "playbooks", "roles")
# but for the lab Molecule scenarios, which need the repository's lab harness (galaxy.yml, build_ignore).
NOT_SHIPPED = ("roles/blue_green/molecule/lab/", "roles/canary/molecule/lab/")

# A fence may be indented (a block inside a list item); its lines carry the same indentation.
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def code_blocks() -> dict[str, list[tuple[str, str]]]:
    """Each `## ` section's fenced blocks, as (language, text), in page order."""
    with open(QUICKSTART, encoding="utf-8") as handle:
        page = handle.read()
    sections: dict[str, list[tuple[str, str]]] = {}
    for chunk in re.split(r"^## ", page, flags=re.MULTILINE)[1:]:
        heading, _newline, body = chunk.partition("\n")
        blocks = [(m.group(2), textwrap.dedent(m.group(3))) for m in FENCE.finditer(body)]
        if blocks:
            sections[heading.strip()] = blocks
    return sections


def section_script(blocks: list[tuple[str, str]]) -> str:
    """One bash script: the sh blocks as they are, each yaml block written to the file its first line
    names (`# ~/relops-try/first.yml`), where the reader saves it."""
    parts = ["set -euo pipefail"]
    for language, text in blocks:
        if language == "sh":
            parts.append(text)
            continue
        assert language == "yaml", "a %s block in the quickstart's section %r" % (language, RUN)
        first = text.splitlines()[0]
        assert first.startswith("# ~/"), "the yaml block must start with the file it is saved as: %r" % first
        parts.append("cat > %s <<'RELOPS_QUICKSTART_EOF'\n%sRELOPS_QUICKSTART_EOF" % (first[2:], text))
    return "\n".join(parts) + "\n"


def tracked_files(directory: str) -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--", directory], cwd=REPO, check=True, capture_output=True, text=True
    )
    return [path for path in listing.stdout.split("\0") if path and os.path.exists(os.path.join(REPO, path))]


def test_every_quickstart_section_with_code_is_run_or_says_where_it_runs() -> None:
    sections = code_blocks()
    assert RUN in sections
    assert sorted(sections) == sorted([RUN, *NOT_RUN]), "sections with code blocks: %s" % sorted(sections)


def test_the_quickstart_runs_from_the_installed_tarball_outside_the_repository(tmp_path: os.PathLike[str]) -> None:
    home = os.path.join(str(tmp_path), "home")
    os.makedirs(home)
    script = section_script(code_blocks()[RUN])
    # The first block builds in the checkout, as the page says; every later command runs in ~/relops-try.
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=user_environment(home),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"localhost +: ok=11 +changed=\d+ +unreachable=0 +failed=0", output), output  # first.yml
    assert "schema version" in output, output  # relops.release.ledger_status ran from the installed collection

    try_dir = os.path.join(home, "relops-try")
    installed = os.path.join(try_dir, "collections", "ansible_collections", "relops", "release")
    missing = [
        path
        for directory in SHIPPED
        for path in tracked_files(directory)
        if "__pycache__" not in path
        and not path.startswith(NOT_SHIPPED)
        and not os.path.exists(os.path.join(installed, path))
    ]
    assert not missing, "the tarball does not ship (galaxy.yml build_ignore?): %s" % missing
    for left_out in NOT_SHIPPED:
        assert not os.path.exists(os.path.join(installed, left_out))

    with open(os.path.join(try_dir, "VERSION"), encoding="utf-8") as handle:
        assert handle.read() == "hello 1.0.0\n"
    ledger = os.path.join(home, ".local", "state", "relops", "ledger.db")
    with sqlite3.connect(ledger) as db:
        deployments = db.execute("SELECT service, environment, version, status FROM deployments").fetchall()
    assert deployments == [("hello", "staging", "1.0.0", "successful")]

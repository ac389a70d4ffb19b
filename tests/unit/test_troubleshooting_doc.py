"""docs/troubleshooting.md quotes the collection's error messages: every quoted message must still exist in
plugins/ or roles/, so the page stays true when a message is reworded.

Each ```text block on the page is one message. Its fixed parts (the text between <placeholders>) must each
be found in the source: in a Python string literal (adjacent literals joined, as Python joins them) or in a
role's YAML, whitespace collapsed in both.
"""

from __future__ import annotations

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(REPO, "docs", "troubleshooting.md")
PLACEHOLDER = re.compile(r"<[^<>\n]+>")
# Shorter fixed parts ("(", " to ", "; ") prove nothing about the message.
MIN_FRAGMENT = 8
JOINS = re.compile(r"[:;] ")


def collapse(text: str) -> str:
    return " ".join(text.split())


def quoted_messages(markdown: str) -> list[str]:
    return [collapse(block) for block in re.findall(r"^```text\n(.*?)^```", markdown, re.S | re.M)]


def fragments(message: str) -> list[str]:
    """The fixed parts of a message, without the quotes that %r adds around a placeholder. A printed
    message joins several source strings with ": " and "; " (a task's message and its reasons), so the
    fixed parts are cut there too."""
    parts = (piece.strip().strip("'\"`").strip() for part in PLACEHOLDER.split(message) for piece in JOINS.split(part))
    return [part for part in parts if len(part) >= MIN_FRAGMENT]


def python_strings(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def source_texts() -> list[str]:
    texts: list[str] = []
    for top in ("plugins", "roles"):
        for root, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                path = os.path.join(root, name)
                if name.endswith(".py"):
                    texts.extend(collapse(text) for text in python_strings(path))
                elif name.endswith((".yml", ".yaml", ".j2")):
                    with open(path, encoding="utf-8") as handle:
                        texts.append(collapse(handle.read()))
    return texts


@pytest.fixture(scope="module")
def sources() -> str:
    return "\n".join(source_texts())


@pytest.fixture(scope="module")
def page() -> str:
    with open(PAGE, encoding="utf-8") as handle:
        return handle.read()


def test_the_page_quotes_messages(page: str) -> None:
    messages = quoted_messages(page)
    assert len(messages) >= 30, "the page should quote the collection's common errors, found %d" % len(messages)
    for message in messages:
        assert fragments(message), "%r has no fixed part long enough to check; quote more of it" % message


def test_every_quoted_message_exists_in_the_source(page: str, sources: str) -> None:
    missing = [
        (message, fragment)
        for message in quoted_messages(page)
        for fragment in fragments(message)
        if fragment not in sources
    ]
    assert not missing, "quoted text no longer in plugins/ or roles/ (reworded? update the page):\n%s" % "\n".join(
        "%s\n    missing: %r" % pair for pair in missing
    )


def test_the_check_catches_a_reworded_message(sources: str) -> None:
    # The page's first message, reworded: the check must notice, or it proves nothing.
    real = "artifact <name> failed verification: artifact <name>: <algorithm> mismatch (expected <e>, got <a>)"
    reworded = real.replace("failed verification", "did not pass verification")
    assert all(fragment in sources for fragment in fragments(real))
    assert not all(fragment in sources for fragment in fragments(reworded))


def test_fragments_drop_placeholders_and_repr_quotes() -> None:
    message = "lock '<name>' is held by <holder> since <time> and expires at <time> (waited <n>s); wait for it"
    assert fragments(message) == ["is held by", "and expires at", "wait for it"]


def test_the_readme_links_the_page() -> None:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        assert "docs/troubleshooting.md" in handle.read()

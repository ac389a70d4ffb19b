# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Passwords in database URLs: where they are, and how to show a URL without them.

Target-safe: the standard library only (db_migrate runs on targets; the ledger on the controller).

A password holding an unencoded ``/``, ``#`` or ``?`` ends ``urlsplit``'s host part early, so the
rest of it would be reported as path, query or fragment; an unencoded ``@`` moves the host. The
password is therefore located on the text itself: from the first ``:`` after ``scheme://`` to the
LAST ``@`` of the URL. When that disagrees with a standard parse, the URL is ambiguous (the user
must percent-encode) and everything in that span is treated as secret: redacting too much is safe,
too little is not.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple
from urllib.parse import unquote, urlsplit

MASK = "***"
# A password= parameter runs to the next & or the end: an unencoded # would otherwise start a fragment.
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)([^&]*)")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def password_span(url: str) -> Optional[Tuple[int, int]]:
    """The [start, end) of the password in the user part of ``url``, or None when it has none."""
    authority = url.find("://")
    if authority < 0:
        return None
    authority += 3
    text = _QUERY_PASSWORD.sub(lambda match: match.group(1) + " " * len(match.group(2)), url)
    at = text.rfind("@")
    if at < authority:
        return None
    colon = text.find(":", authority, at)
    if colon < 0:
        return None
    return colon + 1, at


def redact_url(url: str) -> str:
    """The URL with its password (user part and ``password=`` parameters) replaced by ***."""
    span = password_span(url)
    if span is not None:
        url = url[: span[0]] + MASK + url[span[1] :]
    return _QUERY_PASSWORD.sub(lambda match: match.group(1) + MASK, url)


def url_secrets(url: str) -> List[str]:
    """Every form in which the URL's password could appear in a driver's message, longest first."""
    secrets: List[str] = []
    span = password_span(url)
    if span is not None:
        raw = url[span[0] : span[1]]
        secrets.extend([raw, unquote(raw)])
    for match in _QUERY_PASSWORD.finditer(url):
        secrets.extend([match.group(2), unquote(match.group(2))])
    return sorted({secret for secret in secrets if secret}, key=len, reverse=True)


def scrub(message: str, url: str) -> str:
    """Replace any form of the URL's password in a message with ***."""
    for secret in url_secrets(url):
        message = message.replace(secret, MASK)
    return message


def needs_encoding(url: str) -> bool:
    """True when the user part holds a character that must be percent-encoded: / # ? @ or a stray %.

    Parsers disagree on such a URL (urlsplit ends the host part at the first / # ?, libpq at the
    first @) and quote pieces of the password in their errors, so it is refused before any parser sees it.
    """
    span = password_span(url)
    if span is None:
        return False
    userinfo = url[url.find("://") + 3 : span[1]]
    if "@" in userinfo or _STRAY_PERCENT.search(userinfo):
        return True
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return True
    return "@" not in netloc or netloc.rsplit("@", 1)[0] != userinfo

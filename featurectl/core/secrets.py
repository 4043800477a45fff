"""Masking secrets in any text shown to a user: one helper for every message (SPEC §7)."""
from __future__ import annotations

import re

MASK = "***"
# scheme://user:PASSWORD@host — greedy up to the token's last '@', so an unencoded '#', '@'
# or '?' inside the password is masked too (masking too much is the safe side).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s/]*@(?=[^\s@]*(?:\s|$))")
# password=... in a URL query (?password=, &password=) or a libpq key=value DSN (quoted or not).
_KEY_VALUE = re.compile(r"""((?:^|[\s?&;,("'])(?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'")]+)""",
                        re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """`text` with every password in URLs and DSNs replaced by ***; user, host, port and path stay."""
    text = _KEY_VALUE.sub(lambda m: m.group(1) + MASK, text)
    return _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)


def unencoded_url_problem(url: str) -> str | None:
    """Why a URL cannot be parsed without guessing (an unencoded '#' or a second '@' in it, as a
    password may hold), or None. Drivers split such URLs at the wrong place and then echo
    pieces of the password in their errors, so these are refused before any driver sees them."""
    if "://" not in url:
        return None
    if "#" in url or url.count("@") > 1:
        return ("it holds an unencoded '#' or more than one '@'; percent-encode them in the "
                "password ('#' as %23, '@' as %40)")
    return None

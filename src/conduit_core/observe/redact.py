"""Keep secrets out of everything conduit prints or stores."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*):(?P<password>[^@\s]+)@")
_KEY_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords, ``password=...`` pairs and any known secret values."""
    text = _URL_PASSWORD.sub(r"\g<scheme>:***@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}=***", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def clip(text: str, limit: int = 400) -> str:
    """A driver's message cut to ``limit`` characters: some quote the whole statement (a CREATE TABLE of two
    thousand columns is 29 KB), which would bury the error itself."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"

"""Which values are secret, and how they are hidden (one rule for the whole package).

A name is secret when it contains one of :data:`SECRET_WORDS` in any case
(``api_key``, ``DB_PASSWORD``, ``github_token``...).  History, the dashboard page
and graphs never show a secret parameter's value, only :data:`MASK`; the result
store warns when storage options hold one.

Examples
--------
>>> is_secret("API_Key"), is_secret("n")
(True, False)
>>> mask_secrets({"n": 1, "api_token": "abc", "opts": {"password": "x", "user": "u"}})
{'n': 1, 'api_token': '********', 'opts': {'password': '********', 'user': 'u'}}
"""
from __future__ import annotations

from typing import Any

__all__ = ["MASK", "SECRET_WORDS", "is_secret", "mask_secrets"]

#: Words that make a name secret, in any case.
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "key", "credential")
#: What a secret value is shown as.
MASK = "********"


def is_secret(name: object) -> bool:
    """True when ``name`` contains one of :data:`SECRET_WORDS` (any case)."""
    lowered = str(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(value: Any, depth: int = 0) -> Any:
    """``value`` with the values of secret-named dict keys replaced by :data:`MASK`,
    inside nested dicts, lists and tuples too."""
    if depth > 10:
        return value
    if isinstance(value, dict):
        return {k: MASK if is_secret(k) else mask_secrets(v, depth + 1) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(mask_secrets(v, depth + 1) for v in value)
    return value

"""Keeps OAuth2 login parameters out of the access log.

uvicorn logs every request line with its query string, so `/auth/callback?code=...&state=...`
would put each login's authorization code into the log. PKCE makes a leaked code useless without
the verifier, but a code that failed its callback stays redeemable for a while: it has no
business in a log file.
"""

from __future__ import annotations

import logging
import re
from typing import Final

ACCESS_LOGGER: Final = "uvicorn.access"
_SENSITIVE: Final = re.compile(
    r"(?P<key>(?:^|[?&])(?:code|state|code_verifier|access_token|refresh_token|token)=)[^&#\s]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _SENSITIVE.sub(r"\g<key>[redacted]", text)


class RedactQuerySecrets(logging.Filter):
    """Rewrites the arguments of a log record (uvicorn passes the path as one of them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = ACCESS_LOGGER) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
        logger.addFilter(RedactQuerySecrets())

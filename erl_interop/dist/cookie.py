"""Where the distribution cookie comes from.

Owns: ``resolve_cookie``: an explicit cookie, else the ``ERL_INTEROP_COOKIE`` environment
variable, else ``~/.erlang.cookie`` exactly as ``erl`` uses it (created with 20 random
upper-case letters and mode 0400 when missing; refused when group/other can access it).
Must not: cache anything or touch the network.
"""

from __future__ import annotations

import os
import secrets
import stat
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["COOKIE_ENV", "resolve_cookie"]

#: Environment variable consulted when no cookie is passed explicitly.
COOKIE_ENV: Final = "ERL_INTEROP_COOKIE"


def resolve_cookie(
    explicit: str | None = None, *, env: Mapping[str, str] | None = None, home: Path | None = None
) -> str:
    """Find the cookie the way ``erl`` would, with an environment override.

    Args:
        explicit: a cookie given by the caller (``-setcookie``); wins when not None.
        env: environment to read ``ERL_INTEROP_COOKIE`` from (default ``os.environ``).
        home: home directory holding ``.erlang.cookie`` (default ``Path.home()``).

    Returns:
        The cookie text.

    Raises:
        ValueError: the cookie is empty, or the cookie file is accessible by group/others
            (``erl`` refuses such a file too).
    """
    if explicit is not None:
        if not explicit:
            raise ValueError("the cookie must not be empty")
        return explicit
    from_env = (os.environ if env is None else env).get(COOKIE_ENV)
    if from_env:
        return from_env
    path = (Path.home() if home is None else home) / ".erlang.cookie"
    if not path.exists():
        # erl creates the file with 20 random capital letters, readable by the owner only.
        cookie = "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as f:
            f.write(cookie)
        return cookie
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"Cookie file {path} must be accessible by owner only")
    text = path.read_text(encoding="latin-1").strip()
    if not text:
        raise ValueError(f"Cookie file {path} is empty")
    # erl uses the first line, without surrounding whitespace.
    return text.splitlines()[0].strip()

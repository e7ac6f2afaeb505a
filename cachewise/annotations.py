"""GitHub Actions workflow commands (``::error file=F,line=N,title=T::message``), escaped once.

Used by ``cachewise budget check`` and ``cachewise lint``. A leaf: it imports nothing of cachewise.
"""

from __future__ import annotations

__all__ = ["escape_data", "escape_property"]


def escape_data(value: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A workflow command's property value (file, title): the message escapes plus ``:`` and ``,``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")

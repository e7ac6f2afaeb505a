"""``python -m cachewise``: the same command line as the installed ``cachewise`` script."""

from __future__ import annotations

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main()

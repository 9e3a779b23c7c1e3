"""``python -m parsec``: the ``parsec`` command line."""

from __future__ import annotations

from parsec.cli import main

if __name__ == "__main__":
    main()

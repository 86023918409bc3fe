"""``python -m funksgd``: the command line; see ``funksgd --help``."""

from ._cli import main

if __name__ == "__main__":  # not when a tool such as pytest --doctest-modules imports it
    raise SystemExit(main())

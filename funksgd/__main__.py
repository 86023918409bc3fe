"""``python -m funksgd``: the command line; see ``funksgd --help``."""

from ._cli import main

raise SystemExit(main())

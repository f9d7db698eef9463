"""``python -m convstore``: the convstore command line."""

from convstore._cli import main

raise SystemExit(main())

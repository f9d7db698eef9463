"""``python -m convstore``: the convstore command line."""

from convstore._cli.main import main

raise SystemExit(main())

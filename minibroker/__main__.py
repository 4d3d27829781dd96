"""``python -m minibroker``: run a broker from the command line (see ``minibroker.cli``)."""

from minibroker.cli import main

raise SystemExit(main())

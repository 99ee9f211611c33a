"""``python -m desktop_app.cli``."""

from desktop_app.cli.main import main

raise SystemExit(main())

"""`python -m bot` runs the paperbot command line."""

from bot.cli import main

raise SystemExit(main())

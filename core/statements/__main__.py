"""`python -m core.statements generate --month YYYY-MM [--finalise]`: see core.statements.cli."""

from core.statements.cli import main

raise SystemExit(main())

"""`python -m core.usage import FILE --partner ID`: see core.usage.cli."""

from core.usage.cli import main

raise SystemExit(main())

"""`python -m core.notify deliver`: see core.notify.outbox."""

from core.notify.outbox import main

raise SystemExit(main())

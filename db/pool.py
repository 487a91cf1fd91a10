"""Connection checks at checkout for the app's pool, made only for connections that sat idle a while.

`pool_pre_ping` pings the server at every checkout: one more round trip for every short read session, and a
page opens several (about 1 in 5 of the app server's database waits under 20 concurrent sessions, see
docs/performance.md, "Concurrent users"). A connection that was in use a moment ago is almost surely alive,
so only one idle for IDLE_PING_S or longer is pinged; a dead one is replaced before the caller gets it. If
the server restarts while connections are busy, the first statement on a dead connection fails once, and
SQLAlchemy then invalidates the whole pool, so the following checkouts connect afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, event, exc

IDLE_PING_S = 10.0
_SINCE = "rc_idle_since"


def ping_when_idle(engine: Engine, idle_s: float = IDLE_PING_S,
                   clock: Callable[[], float] = time.monotonic) -> Engine:
    """Install the check on `engine` (made with pool_pre_ping=False); returns the engine."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info[_SINCE] = clock()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        since = record.info.pop(_SINCE, None)
        if since is None or clock() - since < idle_s:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as err:  # noqa: BLE001 - any failure means: not usable, connect again
            raise exc.DisconnectionError("idle connection is gone") from err

    return engine

"""Who a statement waited for: the tables it names (read with pglast) and the other sessions
holding locks on them (``pg_locks`` joined to ``pg_stat_activity``), asked right after the
statement hit ``lock_timeout``, while the holder usually still holds its lock.

PostgreSQL's lock_timeout error names neither the table nor the holder; this module finds
both so a lock wait is reported as one: ``waited for a lock on "shop_item", held by pid 4242
(AccessShareLock, application_name 'psql', idle in transaction since 23:41:07)``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import pglast
import pglast.parser
from pglast import visitors

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("migtools.apply")

_PARAM = re.compile(r"%\(\w+\)s|%s")
_MOST = 3

# Granted locks that other sessions hold on the given relations, the strongest first.
_HOLDERS = """
SELECT c.relname, l.pid, l.mode, a.application_name, a.state,
       a.state_change, a.client_addr, a.client_port
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation = ANY(%s::oid[])
ORDER BY l.relation, l.pid
"""


class _Relations(visitors.Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str | None, str]] = []

    def visit_RangeVar(self, _ancestors: Any, node: Any) -> None:
        pair = (node.schemaname, node.relname)
        if pair not in self.found:
            self.found.append(pair)


def relations(sql: str) -> list[tuple[str | None, str]]:
    """The (schema, name) of every table ``sql`` names, in order; [] when unparsable."""
    try:
        tree = pglast.parse_sql(_PARAM.sub("NULL", sql))
    except pglast.parser.ParseError:
        return []
    visitor = _Relations()
    visitor(tree)
    return visitor.found


def holders(connection: BaseDatabaseWrapper, sql: str) -> str:
    """``waited for a lock on "t", held by pid N (mode, application_name …, state since …)``,
    or "" when ``sql`` names no table or nobody else holds a lock on its tables any more."""
    names = relations(sql)
    if not names:
        return ""
    quote = connection.ops.quote_name
    try:
        with connection.cursor() as cursor:
            oids = []
            for schema, name in names:
                qualified = f"{quote(schema)}.{quote(name)}" if schema else quote(name)
                cursor.execute("SELECT to_regclass(%s)::oid", [qualified])
                row = cursor.fetchone()
                if row and row[0] is not None:
                    oids.append(row[0])
            if not oids:
                return ""
            cursor.execute(_HOLDERS, [oids])
            rows = cursor.fetchall()
    except Exception:  # best effort: the error being reported matters more
        logger.debug("could not read the lock holders", exc_info=True)
        return ""
    by_table: dict[str, list[str]] = {}
    for table, pid, mode, app, state, since, addr, port in rows:
        parts = [mode]
        if app:
            parts.append(f"application_name {app!r}")
        parts.append(f"client {addr}:{port}" if addr else "client local socket")
        if state:
            parts.append(f"{state} since {since:%H:%M:%S}" if since else state)
        by_table.setdefault(table, []).append(f"pid {pid} ({', '.join(parts)})")
    if not by_table:
        return ""
    waits = []
    for table, pids in by_table.items():
        more = f" and {len(pids) - _MOST} more" if len(pids) > _MOST else ""
        waits.append(f"{quote(table)}, held by {', '.join(pids[:_MOST])}{more}")
    return "waited for a lock on " + "; on ".join(waits)

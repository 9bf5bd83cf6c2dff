"""Named leases in one SQL row each: the loop agents' leader election, on SQLite and PostgreSQL alike.

A lease is taken or renewed by one conditional UPDATE (``WHERE epoch = <read> AND (holder = me OR
expires_at < now)``), so two agents racing for an expired lease cannot both win: the second UPDATE
matches no row. A lease never taken is created by INSERT, and the loser of that race gets a
primary-key conflict, read as "someone else holds it". Expiry compares the clocks of the processes
that write the row (the server's, behind REST): agents on several machines need synchronised clocks
(NTP), and the lease's ttl must be well above their skew.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from loopml.entities.scale import Lease
from loopml.store.monitoring import check_lease
from loopml.store.sql import tables as t
from loopml.store.sql.audit import append_event
from loopml.store.sql.engine import AnyRow, read_statement, write_transaction
from loopml.timestamps import now_ms


def _lease(row: AnyRow) -> Lease:
    return Lease(row.name, row.holder, row.epoch, row.acquired_at, row.expires_at)


def _elected(conn: Connection, lease: Lease, previous: str | None) -> None:
    append_event(
        conn, actor=lease.holder, action="loop.leader.elected", target_type="lease", target=lease.name,
        before=None if previous is None else {"holder": previous}, after={"holder": lease.holder, "epoch": lease.epoch},
        reason="no lease yet" if previous is None else f"the lease of {previous} had expired",
    )  # fmt: skip


def acquire(engine: Engine, name: str, holder: str, ttl_s: float) -> Lease | None:
    """Take or renew ``name`` for ``holder``; None while another holder's lease runs."""
    ttl_ms = int(check_lease(name, holder, ttl_s) * 1000)
    now = now_ms()
    c = t.leases.c
    try:
        with write_transaction(engine) as conn:
            row = conn.execute(select(t.leases).where(c.name == name)).first()
            if row is None:
                lease = Lease(name, holder, 1, now, now + ttl_ms)
                conn.execute(t.leases.insert().values(name=name, holder=holder, epoch=1, acquired_at=now,
                                                      expires_at=now + ttl_ms))  # fmt: skip
                _elected(conn, lease, None)
                return lease
            if row.holder != holder and row.expires_at >= now:
                return None
            renewing = row.holder == holder
            epoch = row.epoch if renewing else row.epoch + 1
            acquired = row.acquired_at if renewing else now
            done = conn.execute(
                update(t.leases)
                .where(c.name == name, c.epoch == row.epoch, c.holder == row.holder)
                .where((c.holder == holder) | (c.expires_at < now))
                .values(holder=holder, epoch=epoch, acquired_at=acquired, expires_at=now + ttl_ms)
            )
            if done.rowcount != 1:  # another agent took it between the read and the write
                return None
            lease = Lease(name, holder, epoch, acquired, now + ttl_ms)
            if not renewing:
                _elected(conn, lease, row.holder)
            return lease
    except IntegrityError:  # two first INSERTs raced; the other one won
        return None


def release(engine: Engine, name: str, holder: str) -> None:
    """Expire ``name`` now if ``holder`` holds it, so a follower takes over at its next try."""
    check_lease(name, holder)
    with write_transaction(engine) as conn:
        conn.execute(
            update(t.leases).where(t.leases.c.name == name, t.leases.c.holder == holder).values(expires_at=now_ms() - 1)
        )


def get(engine: Engine, name: str) -> Lease | None:
    """The stored lease (possibly expired), or None."""
    check_lease(name, "reader")
    with read_statement(engine) as conn:
        row = conn.execute(select(t.leases).where(t.leases.c.name == name)).first()
    return None if row is None else _lease(row)

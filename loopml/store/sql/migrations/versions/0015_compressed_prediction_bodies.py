"""Long request bodies in the SQL prediction log are stored compressed (``predictions.inputs_zstd``).

Rows written before keep their body in ``inputs`` and read as they did; see
``loopml.store.predictions.bodies`` for the format and why.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("inputs_zstd", sa.LargeBinary))


def downgrade() -> None:
    """Put every compressed body back into ``inputs`` first: dropping the column must not lose one."""
    from loopml.store.predictions.bodies import unpack

    predictions = sa.table(
        "predictions", sa.column("id"), sa.column("inputs", sa.Text), sa.column("inputs_zstd", sa.LargeBinary)
    )
    conn = op.get_bind()
    last = None
    while True:
        query = sa.select(predictions.c.id, predictions.c.inputs_zstd).where(predictions.c.inputs_zstd.is_not(None))
        if last is not None:
            query = query.where(predictions.c.id > last)
        rows = conn.execute(query.order_by(predictions.c.id).limit(1_000)).all()
        if not rows:
            break
        for row in rows:
            conn.execute(
                predictions.update()
                .where(predictions.c.id == row.id)
                .values(inputs=unpack("", row.inputs_zstd), inputs_zstd=None)
            )
        last = rows[-1].id
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("inputs_zstd")

"""Model versions pin the sha256 of their manifest at registration (the security review, finding 1).

Versions registered before this revision are pinned to the manifest their run's
index names now: the best evidence left of what was registered. A version whose
manifest is gone keeps no pin, and loading it is refused.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_MANIFEST = "loopml-model.json"


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("manifest_digest", sa.String(64), nullable=True))
    conn = op.get_bind()
    versions = conn.execute(sa.text("SELECT name, version, run_id, source FROM model_versions")).all()
    for name, version, run_id, source in versions:
        path = source.split("/", 2)[2] if source.startswith("runs:/") and source.count("/") >= 2 else ""
        digest = conn.execute(
            sa.text("SELECT digest FROM artifacts WHERE run_id = :run_id AND path = :path"),
            {"run_id": run_id, "path": f"{path}/{_MANIFEST}"},
        ).scalar()
        if digest is not None:
            conn.execute(
                sa.text("UPDATE model_versions SET manifest_digest = :digest WHERE name = :name AND version = :version"),
                {"digest": digest, "name": name, "version": version},
            )


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("manifest_digest")

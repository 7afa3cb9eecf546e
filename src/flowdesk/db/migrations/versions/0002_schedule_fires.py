"""schedule fires

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import flowdesk.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column(
            "fire_time", flowdesk.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at", flowdesk.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(["flow_id"], ["flows.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        # The guard against firing a time twice, whichever scheduler tries.
        sa.UniqueConstraint("flow_id", "fire_time", name="uq_schedule_fires_flow_time"),
    )


def downgrade() -> None:
    op.drop_table("schedule_fires")

"""guarded rollouts: a unit key per project, rollouts, the guard's lease, deployment reasons

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 00:30:00.000000
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("unit_key", sa.String(length=64), nullable=True))
    projects = sa.table("projects", sa.column("id", sa.Uuid()), sa.column("unit_key", sa.String()))
    connection = op.get_bind()
    for (project_id,) in connection.execute(sa.select(projects.c.id)).all():
        connection.execute(
            projects.update()
            .where(projects.c.id == project_id)
            .values(unit_key=secrets.token_hex(32))
        )
    with op.batch_alter_table("projects") as batch:
        batch.alter_column("unit_key", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rollout_id", sa.Uuid(), nullable=True))
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prompt_id", sa.Uuid(), nullable=False),
        sa.Column("candidate", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rollouts_prompt_started", "rollouts", ["prompt_id", "started_at"])
    op.create_index("ix_rollouts_status", "rollouts", ["status"])
    op.create_table(
        "guard_lease",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.Uuid(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("guard_lease")
    op.drop_index("ix_rollouts_status", table_name="rollouts")
    op.drop_index("ix_rollouts_prompt_started", table_name="rollouts")
    op.drop_table("rollouts")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("rollout_id")
        batch.drop_column("reason")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("unit_key")

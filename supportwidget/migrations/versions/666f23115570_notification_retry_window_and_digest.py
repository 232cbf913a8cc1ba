"""notification retry window and failure digest

Revision ID: 666f23115570
Revises: f996936c0063
Create Date: 2026-12-01 03:06:24.216874

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "666f23115570"
down_revision = "f996936c0063"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("failure_reported_at", sa.DateTime(), nullable=True))
        batch_op.create_index(
            "ix_notification_unreported", ["status", "failure_reported_at"], unique=False
        )

    # Existing rows were queued when they were created; failures from before the digest
    # existed are not mailed to the admins all at once.
    op.execute("UPDATE notification SET queued_at = created_at")
    op.execute("UPDATE notification SET failure_reported_at = created_at WHERE status = 'failed'")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.alter_column("queued_at", existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_unreported")
        batch_op.drop_column("failure_reported_at")
        batch_op.drop_column("queued_at")

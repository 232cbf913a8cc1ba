"""emergency category answer and site check; acknowledgement is the emergency response

Revision ID: 4e290b453a7d
Revises: c9b9323a5d03
Create Date: 2026-12-02 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "4e290b453a7d"
down_revision = "c9b9323a5d03"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category_answer", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("site_check", sa.JSON(), nullable=True))

    # An acknowledgement is the emergency response: emergencies acknowledged before this
    # revision stop showing their emergency-response target as pending or breached.
    op.execute(
        "UPDATE ticket SET first_responded_at = acknowledged_at "
        "WHERE kind = 'emergency' AND first_responded_at IS NULL AND acknowledged_at IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("site_check")
        batch_op.drop_column("category_answer")

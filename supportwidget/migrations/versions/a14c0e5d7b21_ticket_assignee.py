"""ticket assignee, and reply screenshots: the conversation through the ticket

Revision ID: a14c0e5d7b21
Revises: 4e290b453a7d
Create Date: 2026-12-01 07:15:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "a14c0e5d7b21"
down_revision = "4e290b453a7d"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_ticket_assignee_id_staff"), "staff", ["assignee_id"], ["id"]
        )
    # Screenshots sent with a requester's reply belong to that reply.
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_attachment_event_id_ticket_event"), "ticket_event", ["event_id"], ["id"]
        )


def downgrade():
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_attachment_event_id_ticket_event"), type_="foreignkey"
        )
        batch_op.drop_column("event_id")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ticket_assignee_id_staff"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ticket_assignee_id"))
        batch_op.drop_column("assignee_id")

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
    # ADD COLUMN with the reference inline, never a batch rebuild: on SQLite a rebuild drops and
    # recreates `ticket`, which the tickets' events and attachments refer to, so it fails on
    # a database that holds tickets. Alembic cannot add a constraint on SQLite: say it in SQL.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE ticket ADD COLUMN assignee_id INTEGER REFERENCES staff (id)")
        op.execute(
            "ALTER TABLE attachment ADD COLUMN event_id INTEGER REFERENCES ticket_event (id)"
        )
    else:
        op.add_column("ticket", sa.Column("assignee_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_ticket_assignee_id_staff", "ticket", "staff", ["assignee_id"], ["id"]
        )
        # Screenshots sent with a requester's reply belong to that reply.
        op.add_column("attachment", sa.Column("event_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_attachment_event_id_ticket_event",
            "attachment",
            "ticket_event",
            ["event_id"],
            ["id"],
        )
    op.create_index("ix_ticket_assignee_id", "ticket", ["assignee_id"], unique=False)


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

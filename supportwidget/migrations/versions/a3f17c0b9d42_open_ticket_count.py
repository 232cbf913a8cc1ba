"""open-ticket count kept by triggers: a queue position no longer counts the backlog

Revision ID: a3f17c0b9d42
Revises: 10d07847d710
Create Date: 2026-12-03 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "a3f17c0b9d42"
down_revision = "10d07847d710"
branch_labels = None
depends_on = None

SHARDS = 16  # models.OPEN_COUNT_SHARDS

# SQLite: one trigger per event. A ticket is open while queue_rank < 9.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER ticket_open_count_insert AFTER INSERT ON ticket
    WHEN NEW.queue_rank < 9 BEGIN
        UPDATE open_ticket_count SET open_tickets = open_tickets + 1
        WHERE shard = NEW.id % 16;
    END""",
    """CREATE TRIGGER ticket_open_count_update AFTER UPDATE OF queue_rank ON ticket
    WHEN (OLD.queue_rank < 9) != (NEW.queue_rank < 9) BEGIN
        UPDATE open_ticket_count
        SET open_tickets = open_tickets + CASE WHEN NEW.queue_rank < 9 THEN 1 ELSE -1 END
        WHERE shard = NEW.id % 16;
    END""",
    """CREATE TRIGGER ticket_open_count_delete AFTER DELETE ON ticket
    WHEN OLD.queue_rank < 9 BEGIN
        UPDATE open_ticket_count SET open_tickets = open_tickets - 1
        WHERE shard = OLD.id % 16;
    END""",
]

# PostgreSQL: one function for the row events, one for TRUNCATE (which fires no row trigger).
POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION ticket_open_count() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        delta integer := 0;
        ticket_id bigint;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            ticket_id := OLD.id;
        ELSE
            ticket_id := NEW.id;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            IF OLD.queue_rank < 9 THEN delta := delta - 1; END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            IF NEW.queue_rank < 9 THEN delta := delta + 1; END IF;
        END IF;
        IF delta <> 0 THEN
            UPDATE open_ticket_count SET open_tickets = open_tickets + delta
            WHERE shard = ticket_id % 16;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER ticket_open_count AFTER INSERT OR DELETE OR UPDATE OF queue_rank
    ON ticket FOR EACH ROW EXECUTE FUNCTION ticket_open_count()""",
    """CREATE FUNCTION ticket_open_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE open_ticket_count SET open_tickets = 0;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER ticket_open_count_truncate AFTER TRUNCATE ON ticket
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_open_count_truncate()""",
]


def upgrade():
    op.create_table(
        "open_ticket_count",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("open_tickets", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("shard"),
    )
    op.execute(
        "INSERT INTO open_ticket_count (shard, open_tickets) "
        + " UNION ALL ".join(
            f"SELECT {shard}, (SELECT count(*) FROM ticket "
            f"WHERE queue_rank < 9 AND id % {SHARDS} = {shard})"
            for shard in range(SHARDS)
        )
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)
    # The count it served is now taken from the queue order (ix_ticket_queue).
    op.drop_index("ix_ticket_fcfs", table_name="ticket")


def downgrade():
    op.create_index("ix_ticket_fcfs", "ticket", ["kind", "sla_plan_name", "status", "id"])
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER ticket_open_count_{name}")
    else:
        op.execute("DROP TRIGGER ticket_open_count ON ticket")
        op.execute("DROP TRIGGER ticket_open_count_truncate ON ticket")
        op.execute("DROP FUNCTION ticket_open_count()")
        op.execute("DROP FUNCTION ticket_open_count_truncate()")
    op.drop_table("open_ticket_count")

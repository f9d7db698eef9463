"""The bundled migrations' revisions, without alembic or SQLAlchemy: what a database must be at
for this convstore to use it (tests/test_migrations.py holds the list to the scripts)."""

from __future__ import annotations

#: The bundled revisions, oldest first.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
HEAD = REVISIONS[-1]
#: The table in which convstore records its alembic revision (older convstores used alembic's
#: default, ``alembic_version``; see `placement`).
VERSION_TABLE = "convstore_alembic_version"

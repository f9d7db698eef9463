"""The storage side: the schema, its migrations, the store, its SQLite and PostgreSQL backends."""

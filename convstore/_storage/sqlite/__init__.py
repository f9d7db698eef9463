"""The SQLite backend, through aiosqlite: hot paths as one function on the connection's thread."""

"""The ``convstore`` command for operators: migrations, listings, statistics, import, purge."""

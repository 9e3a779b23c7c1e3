"""The database tests run on every target of the ``db_targets`` plugin
(tests/support/db_targets.py): SQLite and PostgreSQL."""

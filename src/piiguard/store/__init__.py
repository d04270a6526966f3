"""The storage layer: piiguard's own tables through SQLAlchemy Core (SQLite or PostgreSQL)."""

from piiguard.store.store import Store, aware

__all__ = ["Store", "aware"]

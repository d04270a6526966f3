"""The storage layer: piiguard's own tables through SQLAlchemy Core (SQLite or PostgreSQL)."""

from piiguard.store._binding import Binding, joined
from piiguard.store.store import Store, aware

__all__ = ["Binding", "Store", "aware", "joined"]

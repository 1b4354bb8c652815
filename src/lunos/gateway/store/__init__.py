"""The store: one interface (`Store`) over SQLite and PostgreSQL, the history writer and
the key table sync."""

from .keysync import KeySync
from .sql import Store, StoreUnavailable, row_to_public, row_values
from .writer import HistoryWriter

__all__ = ["HistoryWriter", "KeySync", "Store", "StoreUnavailable", "row_to_public", "row_values"]

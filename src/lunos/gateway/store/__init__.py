"""The store: one interface (`Store`) over SQLite and PostgreSQL, the history writer and
the key table sync."""

from .keysync import KeySync
from .rows import HistoryRow, row_values
from .sql import Store, StoreUnavailable
from .writer import HistoryWriter

__all__ = ["HistoryRow", "HistoryWriter", "KeySync", "Store", "StoreUnavailable", "row_values"]

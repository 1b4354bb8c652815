"""The store: one interface (`Store`) over SQLite and PostgreSQL, the history writer and
the key table sync."""

from .keysync import KeySync
from .sql import Store, StoreUnavailable, record_to_row, row_to_public
from .writer import HistoryWriter

__all__ = ["HistoryWriter", "KeySync", "Store", "StoreUnavailable", "record_to_row", "row_to_public"]

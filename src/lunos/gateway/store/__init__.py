"""The store: one interface (`Store`) over SQLite and PostgreSQL, the history writer, the
key table sync and stored Responses-API responses."""

from .keysync import KeySync
from .responses import StoredResponse
from .rows import HistoryRow, row_values
from .sql import Store, StoreUnavailable
from .writer import HistoryWriter

__all__ = ["HistoryRow", "HistoryWriter", "KeySync", "Store", "StoreUnavailable", "StoredResponse",
           "row_values"]

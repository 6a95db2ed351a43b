"""Run directories: append-only storage, resume, provenance."""

from .ids import content_hash, row_id
from .store import CORE_COLUMNS, RowWriter, RunExistsError, RunStore, normalise_rows

__all__ = ["CORE_COLUMNS", "RowWriter", "RunExistsError", "RunStore", "content_hash", "normalise_rows", "row_id"]

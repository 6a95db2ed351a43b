"""Synthetic Data Workbench: the core library (no UI imports)."""

from .engine import (
    Backend,
    FakeBackend,
    Generation,
    GenerationRequest,
    SamplingParams,
    default_model_path,
    load_backend,
)
from .jobs import Job
from .runs import RowWriter, RunStore, row_id
from .session import Session

__all__ = [
    "Backend",
    "FakeBackend",
    "Generation",
    "GenerationRequest",
    "Job",
    "RowWriter",
    "RunStore",
    "SamplingParams",
    "Session",
    "default_model_path",
    "load_backend",
    "row_id",
]
__version__ = "0.1.0"

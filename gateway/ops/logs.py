"""Structured logs (structlog): one JSON object per line, with a timestamp, the level and the logger name.

Session loggers carry the session id (``session``), so ``grep '"session":"00a1..."'`` shows one session's whole
story; each session ends with one ``session.end`` summary line (the CDR's fields, sensitive inputs masked).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


_threshold = LEVELS["info"]


def enabled(level: str) -> bool:
    """Whether ``level`` lines are written: lets the hot path skip building a debug line's fields."""
    return LEVELS[level] >= _threshold


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stdout by default) for every logger at ``level`` and above."""
    global _threshold  # noqa: PLW0603 - one process-wide logging configuration, like structlog's own
    _threshold = LEVELS[level]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get(name: str, **bound: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger named ``name`` with ``bound`` key-values on every line."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name).bind(logger=name, **bound)
    return logger

"""JSON log lines, one object per line, carrying the request id of the request being served.

The edge middleware sets :data:`current_request_id` for the duration of a
request; background work started from it (history, decision stream) inherits
the id through the task's context.
"""

from __future__ import annotations

import contextvars
import logging
import time

import orjson

__all__ = ["JsonFormatter", "configure_logging", "current_request_id"]

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("riskgate_request_id",
                                                                        default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id:
            doc["request_id"] = request_id
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def configure_logging(level: str) -> None:
    """Send every logger (uvicorn's included) to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True

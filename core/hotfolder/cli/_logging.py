"""Where log lines go: the only place that configures loguru's sinks (library code only logs)."""

from __future__ import annotations

import functools
import json
import logging
import sys
from typing import Any

from loguru import logger

from hotfolder.redact import scrub


class _InterceptHandler(logging.Handler):
    """Routes the standard library's log records (httpx, uvicorn) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _scrub_record(record: Any) -> None:
    record["message"] = scrub(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = scrub(value)
    if record["exception"] is not None:
        exc = record["exception"].value
        if exc is not None and exc.args:
            exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)


#: The fields every ``--log-format json`` line has (null when a line is not about a job, or
#: its step or fix are unknown); library code sets them with ``logger.contextualize``/``bind``.
JSON_FIELDS = ("job", "file", "folder", "chain", "step", "hint")


def json_line(record: Any) -> str:
    """One log record as one JSON object: time, level, message, the job's fields, then any
    other bound value and where the line was logged."""
    extra = record["extra"]
    line: dict[str, Any] = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        **{key: extra.get(key) for key in JSON_FIELDS},
        **{key: value for key, value in extra.items() if key not in JSON_FIELDS},
        "logger": f"{record['name']}:{record['function']}:{record['line']}",
    }
    if record["exception"] is not None and record["exception"].type is not None:
        line["exception"] = f"{record['exception'].type.__name__}: {record['exception'].value}"
    return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """Log to stderr: readable lines on a terminal, one JSON object per line for machines."""
    logger.remove()
    logger.configure(patcher=_scrub_record)
    if fmt == "json":
        stream = sys.stderr  # the stream of now, as a sink given sys.stderr keeps it

        def json_sink(message: Any) -> None:
            stream.write(json_line(message.record) + "\n")
            stream.flush()

        logger.add(json_sink, level=level, backtrace=False, diagnose=False)
    elif sys.stderr.isatty():
        # Through rich's console, so that log lines print above a live progress bar.
        from rich.text import Text

        def to_console(message: Any) -> None:
            stderr_console().print(Text.from_ansi(str(message).rstrip("\n")))

        line = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"
        logger.add(
            to_console, level=level, format=line, colorize=True, backtrace=False, diagnose=False
        )
    else:
        line = "{time:YYYY-MM-DDTHH:mm:ss.SSSZZ} {level: <7} {message}"
        logger.add(
            sys.stderr, level=level, format=line, colorize=False, backtrace=False, diagnose=False
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)


@functools.cache
def stderr_console() -> Any:
    """The one rich console on stderr, shared by log lines and progress bars."""
    from rich.console import Console

    return Console(stderr=True)

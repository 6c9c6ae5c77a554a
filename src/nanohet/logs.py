"""Logging for workflow steps: every step writes a log file that says what it did."""

from __future__ import annotations

import logging
import platform
import time
import warnings


def run_step(log_path: str, func, /, **kwargs):
    """Run ``func(**kwargs)`` with logging to ``log_path``.

    The log records the arguments, run time and, on failure, the error with
    its traceback (a bad-input error first as its plain message) before the
    exception propagates so the job fails.
    """
    from . import __version__

    logger = logging.getLogger("nanohet")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(handler)
    warnings.simplefilter("default")
    t0 = time.perf_counter()
    logger.info("nanohet %s, Python %s: %s", __version__, platform.python_version(), func.__name__)
    for key, value in kwargs.items():
        logger.info("  %s = %r", key, value)
    try:
        result = func(**kwargs)
    except Exception as exc:
        from .errors import InputError

        if isinstance(exc, InputError):
            logger.error("input error: %s", exc, exc_info=True)
        else:
            logger.exception("failed: %s", exc)
        raise
    finally:
        logger.info("finished in %.1f s", time.perf_counter() - t0)
        logger.removeHandler(handler)
        logging.getLogger("py.warnings").removeHandler(handler)
        handler.close()
    return result

"""Logging for Snakemake rule scripts: parameters, inputs, outputs, time and errors in the rule's log."""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def rule_logging(log_path, rule: str, params=None, inputs=(), outputs=()) -> Iterator[logging.Logger]:
    """Send this process's logging to ``log_path`` and record what the rule did and how long it took."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    log = logging.getLogger(f"rule.{rule}")
    log.info("rule %s", rule)
    log.info("params: %s", json.dumps(params or {}, sort_keys=True, default=str))
    log.info("inputs: %s", [str(p) for p in inputs])
    started = time.monotonic()
    try:
        yield log
    except BaseException:
        log.exception("rule %s failed after %.1f s", rule, time.monotonic() - started)
        raise
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log.info("outputs: %s", [str(p) for p in outputs])
        log.info("rule %s done in %.1f s (peak RSS %.0f MiB)", rule, time.monotonic() - started, peak_mib)
    finally:
        root.removeHandler(handler)
        handler.close()
        sys.stdout.flush()

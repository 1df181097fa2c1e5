"""Retry a whole load transaction that the warehouse cancelled to keep writers serializable.

Loads into one target already queue behind each other (`dialect.serialize`), but Redshift can
still cancel a transaction whose reads and writes cross another session's (a user's query
writing the ledger, a second code location): "ERROR: 1023 DETAIL: Serializable isolation
violation on table". AWS's first remedy is to retry the cancelled transaction
(https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation-serializable-isolation-troubleshooting.html).
PostgreSQL reports the same condition as SQLSTATE 40001 (or 40P01 for a deadlock).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg2

ATTEMPTS = 4
FIRST_PAUSE_S = 0.5
_RETRYABLE_SQLSTATES = {"40001", "40P01"}

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_serialization_failure(error: BaseException) -> bool:
    if not isinstance(error, psycopg2.Error):
        return False
    if getattr(error, "pgcode", None) in _RETRYABLE_SQLSTATES:
        return True
    return "Serializable isolation violation" in str(error)


def retry_serialization(
    transaction: Callable[[], T],
    what: str,
    attempts: int = ATTEMPTS,
) -> T:
    """Run `transaction` (which opens, fills and commits its own transaction) again when the
    warehouse cancels it for serializability, up to `attempts` times with growing, jittered
    pauses; any other error, or the last cancellation, is raised as it is."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except psycopg2.Error as error:
            if attempt == attempts or not is_serialization_failure(error):
                raise
            pause = FIRST_PAUSE_S * 2 ** (attempt - 1) * (1 + random.random())
            log.warning(
                "%s: cancelled by the warehouse (%s); attempt %d of %d in %.1f s",
                what,
                str(error).strip().splitlines()[0],
                attempt + 1,
                attempts,
                pause,
            )
            time.sleep(pause)
    raise AssertionError("unreachable")

"""Retrying Firestore calls: which errors are transient, and the backoff.

Every call carries :data:`RETRY` (truncated exponential backoff with full
jitter on transient errors), transactions included: an aborted one is
run again by :data:`RETRY`, after a random pause. The library's own
retries (``max_attempts``) restart at once, so contenders that all
aborted collide again; on the emulator (a lock timeout of ~2 s per
abort) eight racing claims measured, over 30 rounds each: 3 attempts,
worst 40 s (mean 4.8 s); 2, worst 13.5 s; 1 plus the jittered backoff,
worst 5.1 s (mean 2.5 s). Hence :data:`TRANSACTION_ATTEMPTS` = 1.
"""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

TRANSACTION_ATTEMPTS = 1  # retried with jitter by RETRY instead: see above


def transient(exc: BaseException) -> bool:
    return isinstance(
        exc,
        gexc.ServiceUnavailable
        | gexc.DeadlineExceeded
        | gexc.InternalServerError
        | gexc.ResourceExhausted
        | gexc.Aborted,
    ) or (
        # The library gives up after max_attempts aborted commits with a
        # ValueError caused by the last Aborted: retry that with backoff too.
        isinstance(exc, ValueError) and isinstance(exc.__cause__, gexc.Aborted)
    )


# The first pause is ~0.25 s at most: wide enough to spread contenders that
# aborted together, short next to the ~2 s an abort costs on the emulator.
RETRY = Retry(predicate=transient, initial=0.25, maximum=4.0, multiplier=2.0, timeout=60.0)

# A preconditioned write refused because another writer got there first.
LOST_RACE = (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Conflict)

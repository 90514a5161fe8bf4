"""Task functions that kill the worker running them (for the executor tests).

Kept apart from the test modules so that a spawned worker imports only this
(a test module would import TensorFlow in every worker).
"""

from __future__ import annotations

import os


def die(task, shared):
    """End the worker process at once, as the out-of-memory killer would."""
    os._exit(3)

"""Helpers for tests that start processes and stop them the way a user would."""

from __future__ import annotations

import signal


def default_ctrl_c() -> None:
    """``preexec_fn`` of a child that a test stops with Ctrl-C (SIGINT): the signal back to its
    default before exec, so Python turns it into KeyboardInterrupt even when the test run itself
    was started in the background, where the shell ignores SIGINT and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

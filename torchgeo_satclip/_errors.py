"""The base of the errors whose message says everything a user needs.

A damaged or unreadable file, a stale packed layout, an output that cannot be
written, a dataset root another build holds: failures at run time (the
command line's exit status 1) that are no bug, so the command line prints
their message as it is, without the exception's type or a hint to look at
the traceback.
"""

__all__ = ['DataError']


class DataError(RuntimeError):
    """Data that cannot be used as it is; the message names the file and the fix.

    A :class:`RuntimeError`, so code that catches those keeps working.
    """

"""Process ids for the tests of stale temporary files."""

import subprocess
import sys


def dead_pid() -> int:
    """The id of a process that has exited (a killed run's, in a temporary name)."""
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid

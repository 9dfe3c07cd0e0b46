"""The one exception type for bad input.

Raised with a single line that names the offending path or value and says how
to fix it. The command line prints it as ``srlib: error: ...`` and exits with
status 2, without a traceback.
"""


class SrlibError(Exception):
    """Bad input from the user: a one-line message naming the value and the fix."""

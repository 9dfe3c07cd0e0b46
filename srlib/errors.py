"""The one exception type for bad input.

Raised with a single line that names the offending path or value and says how
to fix it. The command line prints it as ``srlib: error: ...`` and exits with
status 2, without a traceback.
"""


class SrlibError(Exception):
    """Bad input from the user: a one-line message naming the value and the fix."""


def printable(text: str) -> str:
    """``text`` (a message, or a file name) as one line of valid text: the bytes of a file name that are not
    UTF-8 and control characters (a newline in a name) written as escapes (``\\xff``, ``\\n``)."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c.encode("unicode_escape").decode("ascii") if c < " " or c == "\x7f" else c for c in text)

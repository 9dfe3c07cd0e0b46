"""Building the book: execute the chapters with papermill, then ``jupyter-book build -W``
(``python -m srlib.book``; see :mod:`.build`; the JavaScript it serves: :mod:`.vendor`)."""


def say(message: str) -> None:
    """A progress line of the build."""
    print(f"[srlib.book] {message}", flush=True)

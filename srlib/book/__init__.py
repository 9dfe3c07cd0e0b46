"""Building the book: execute the chapters with papermill, then ``jupyter-book build -W``
(``python -m srlib.book``; see :mod:`.build`)."""

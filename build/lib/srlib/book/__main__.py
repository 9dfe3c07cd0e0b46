"""``python -m srlib.book``: execute the chapters and build the book (see :mod:`srlib.book.build`)."""

from srlib.book.build import main

raise SystemExit(main())

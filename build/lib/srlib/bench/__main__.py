"""``python -m srlib.bench``."""

from srlib.bench.command import main

raise SystemExit(main())

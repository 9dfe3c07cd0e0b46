"""The child process of ``srlib reproduce``: ``python -m srlib.reproduce NOTEBOOK OUTPUT PARAMETERS.json``."""

import sys

from srlib.reproduce.supervise import execute_child

raise SystemExit(execute_child(sys.argv[1:]))

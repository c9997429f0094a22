"""``python -m course_lib.bench``: see :mod:`course_lib.bench.table`."""

from .table import main

main()

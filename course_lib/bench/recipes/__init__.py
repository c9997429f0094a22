"""One module per model family: its settings in each mode (chosen on ML-100K validation) and how to build it.

Each family offers ``<family>_settings(data, mode, ...) -> Settings`` and
``build_<family>(data, settings) -> Recommender``; :mod:`course_lib.bench.registry` pairs them
into the table's entries.
"""

"""Analysis: run directories and searches in, tables, figures and an HTML report out.

It reads only files (DESIGN.md): ``discover`` finds run and search directories, ``grouping``
groups runs by their flags apart from seed and split, ``aggregate`` averages seeds and splits,
``tables`` and ``text_formats`` / ``html`` lay them out, ``recompute`` recomputes metrics from
saved predictions, ``references`` holds published numbers, and ``report`` ties them together
for ``uqbench report`` and ``uqbench compare``.
"""

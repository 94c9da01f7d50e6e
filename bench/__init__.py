"""The arco benchmark: bake one synthetic archive with every local runner and with plain xarray.

``python -m bench.run`` (``make bench``) generates (or reuses) a daily netCDF4 archive under
``bench/data/``, measures this machine's component speeds (netCDF read, codec, disk write,
sha256), then bakes the archive once per runner in a fresh subprocess, sampling the peak RSS of
the whole process tree, verifies every output against the sources and writes a table, a JSON
record and a chart to ``bench/results/``. See ``bench/README.md``.
"""

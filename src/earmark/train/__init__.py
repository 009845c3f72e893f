"""Trainers of earmark's learned probes: ``linear`` (``earmark train-probe``, :mod:`earmark.train.linear`) and
``transfer`` (``earmark train-transfer``, :mod:`earmark.train.transfer`).

Above ``index`` and ``eval`` in the import graph (they read datasets and index clips); the probes they train sit
below, in :mod:`earmark.probes`, and never import this package.
"""

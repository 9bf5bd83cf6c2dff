"""Monitoring: drift tests, data quality, performance once labels arrive, operations, and reports.

Modules, one job each:

* :mod:`~loopml.monitoring.drift`: ``drift(reference, current)`` -> :class:`DriftReport`, and ``prediction_drift``;
* :mod:`~loopml.monitoring.stattests`: the two-sample statistics (KS, Wasserstein, chi-square,
  Jensen-Shannon, PSI) on prepared arrays, and the table of tests by name;
* :mod:`~loopml.monitoring.samples`: one column cleaned into sorted values or category counts;
* :mod:`~loopml.monitoring.quality`: ``quality(reference, current, signature)`` -> :class:`QualityReport`;
* :mod:`~loopml.monitoring.performance`: classification and regression metrics per time bucket and
  segment, and ``join_labels`` (prediction log + feedback);
* :mod:`~loopml.monitoring.operations`: requests, errors and latency percentiles per bucket;
* :mod:`~loopml.monitoring.report`: ``render_report`` writes one self-contained HTML file;
* :mod:`~loopml.monitoring.terminal`: ``drift_table`` and ``quality_table`` for ``rich``;
* :mod:`~loopml.monitoring.monitors`: ``monitor(name, model, ...)`` defines a monitor, ``check(name)``
  runs it and stores the result and its alerts;
* :mod:`~loopml.monitoring.spec`: a monitor's definition, validated and stored as JSON;
* :mod:`~loopml.monitoring.windows`: the current data (a window of the prediction log) and the
  reference (a dataset, or the version's training data through lineage);
* :mod:`~loopml.monitoring.checks`: one check's figures, and the alerts for the thresholds crossed;
* :mod:`~loopml.monitoring.actions`: webhook, log and callable actions run on alerts;
* :mod:`~loopml.monitoring.results`: stored results as DataFrames, and the monitor's HTML report;
* :mod:`~loopml.monitoring.shift`: a real, known shift of the breast-cancer data, for demos and tests.

The entry points are re-exported at the top: ``loopml.drift``, ``loopml.quality``,
``loopml.DriftReport``, ``loopml.QualityReport``, ``loopml.monitor``, ``loopml.run_monitor``,
``loopml.list_monitors``, ``loopml.search_monitor_results``, ``loopml.write_monitor_report``,
``loopml.webhook``, ``loopml.MonitorRunResult``; everything else is imported
from its module (``from loopml.monitoring.report import render_report``). This
package itself re-exports nothing, since several functions share their module's
name (``loopml.monitoring.drift.drift``), and importing it stays free of numpy,
pandas, scipy and matplotlib.
"""

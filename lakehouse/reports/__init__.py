"""Reports people sign: documents rendered to HTML and PDF from the lake's tables.

* :mod:`lakehouse.reports.render` — the shared document model (sections, tables, figures) and
  its HTML / PDF rendering (WeasyPrint), for any report;
* :mod:`lakehouse.reports.batch` — the batch report (identity, trajectories vs golden envelope,
  soft sensor vs lab, T²/SPE and alarms, equipment health, CQAs vs specs, work orders).
"""

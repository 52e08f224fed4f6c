"""Mechanistic digital twin of a monoclonal-antibody manufacturing site.

* :mod:`twin.bioreactor` - vectorised fed-batch CHO bioreactor model (``Recipe``,
  ``DESIGN_SPACE``, ``KineticParams``, ``simulate_batches`` -> ``BatchResult``);
* :mod:`twin.downstream` - Protein A capture cycles and UF/DF (TFF) runs;
* :mod:`twin.equipment` - degradation, failure and maintenance of agitators, feed pumps,
  DO probes, columns and membranes;
* :mod:`twin.deviations` - process deviations with ground-truth onsets;
* :mod:`twin.site` - the site simulator writing the landing zone (``simulate_site``);
* :mod:`twin.historian`, :mod:`twin.writers` - export formatting and fsspec I/O;
* :mod:`twin.cli` - the simulator's own command line (``python -m twin simulate``; the
  product's ``lakehouse`` command is ``bioprocess_cli``).
* :mod:`twin.microbial`, :mod:`twin.microbial_site` - the second, structurally different plant:
  a *Pichia pastoris* methanol fed-batch model and its export in a foreign vendor's formats
  (``export_microbial_plant``).

Documentation: ``docs/twin.md``; landing-zone formats: ``docs/contracts.md``.
"""

"""The small twin site of the integration tests' shared main-job run (tests/integration/conftest.py)."""

from assets.resources import SiteResource

SITE = SiteResource(source="twin", start_date="2026-03-01", days=64, bioreactors=3, interval_s=300.0, seed=3)

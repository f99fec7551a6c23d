"""The shared acceptance scripts (../shared/acceptance) are an extra floor, checked when a
checkout has them beside it, as CI does. Without them these modules are not collected:
nothing here stands in for a test of our own samples, which cover the same styles."""

from tests.conftest import ACCEPTANCE

collect_ignore_glob = [] if ACCEPTANCE.is_dir() else ["test_*.py"]

"""Settings shared by every test package.

Hypothesis: the machine (and CI's) is shared and its speed varies, so generation
speed and per-example time are not health checks here. Tests assert behaviour, never
timing.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("parsec", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("parsec")

pytest_plugins = [
    "cli_fixtures",
    "db_targets",
    "github_fixtures",
    "oidc_fixtures",
    "accounts_fixtures",  # imports db_targets and fake_github: after them
]

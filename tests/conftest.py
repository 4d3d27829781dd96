"""Shared test configuration: hypothesis profiles.

``HYPOTHESIS_PROFILE=ci`` (set by .ci/run) keeps property tests bounded; local runs default to
the more thorough profile.
"""

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# Mutation testing (pyproject.toml [tool.mutmut]): the ci profile's size, but the same examples
# every run and no shrinking, so a mutant's verdict does not depend on luck and a kill costs
# one failing example.
settings.register_profile(
    "mutation",
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thorough"))

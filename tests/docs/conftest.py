"""The documentation recipes use the pytest plugin, as a user's suite does.

Once the package is installed with its ``pytest11`` entry point, pytest loads the plugin by
itself, and naming it here again would register it twice: only without the entry point does
this conftest load it.
"""

from importlib.metadata import entry_points

PLUGIN = "minibroker.testing.pytest_plugin"

if not any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
    pytest_plugins = [PLUGIN]

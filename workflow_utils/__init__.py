"""Shared helpers for the PyTorch Workflow notebook series.

Modules follow the workflow steps: ``device``, ``data``, ``models``, ``engine``
(training loop), ``evaluation``, ``plotting`` and ``checkpoint``. Importing the
package has no side effects: nothing is seeded, downloaded or moved to a device.
"""

from importlib import metadata

try:  # the version lives in pyproject.toml only; the installed metadata carries it
    __version__ = metadata.version("workflow_utils")
except metadata.PackageNotFoundError:  # a source checkout used without `pip install -e .`
    __version__ = "0+unknown"

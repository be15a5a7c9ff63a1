"""Shared helpers for the PyTorch Workflow notebook series.

Modules follow the workflow steps: ``device``, ``data``, ``models``, ``engine``
(training loop), ``evaluation``, ``plotting`` and ``checkpoint``. Importing the
package has no side effects: nothing is seeded, downloaded or moved to a device.
"""

__version__ = "0.1.0"

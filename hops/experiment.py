"""`hops.experiment` is `hops_jupyter.core.experiment`."""

import sys

from hops_jupyter.core import experiment as _module

sys.modules[__name__] = _module

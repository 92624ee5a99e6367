"""`hops.devices` is `hops_jupyter.core.devices`."""

import sys

from hops_jupyter.core import devices as _module

sys.modules[__name__] = _module

"""`hops.util` is `hops_jupyter.core.util`."""

import sys

from hops_jupyter.core import util as _module

sys.modules[__name__] = _module

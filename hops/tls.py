"""`hops.tls` is `hops_jupyter.core.tls`."""

import sys

from hops_jupyter.core import tls as _module

sys.modules[__name__] = _module

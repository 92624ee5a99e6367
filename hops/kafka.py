"""`hops.kafka` is `hops_jupyter.core.kafka`."""

import sys

from hops_jupyter.core import kafka as _module

sys.modules[__name__] = _module

"""`hops.hdfs` is `hops_jupyter.core.hdfs`."""

import sys

from hops_jupyter.core import hdfs as _module

sys.modules[__name__] = _module

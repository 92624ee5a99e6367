"""`hops.tensorboard` is `hops_jupyter.core.tensorboard`."""

import sys

from hops_jupyter.core import tensorboard as _module

sys.modules[__name__] = _module

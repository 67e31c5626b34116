"""Rules for srcgrad's own runtime helpers, so that generated code can be differentiated again.

In: the helpers forward-mode code calls (``zeros_like``, ``zero_list``, ``as_tuple``, ``check_scalar_argument``).
Out: their rules. What holds: zeros and checks carry no gradient; ``as_tuple`` passes it through.
"""

from srcgrad import runtime
from srcgrad.rules.registry import defgrad, nondifferentiable

for _fn in (runtime.zeros_like, runtime.zero_list, runtime.check_scalar_argument):
    nondifferentiable(_fn)


@defgrad(runtime.as_tuple)
def as_tuple(g, ans, x):
    return g

nondifferentiable(runtime.check_unshared)
nondifferentiable(runtime.check_distinct)

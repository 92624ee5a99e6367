"""Bayesian optimization with a Gaussian process (scikit-learn's GaussianProcessRegressor) and
expected improvement: the strongest search at notebook budgets (tens to a few hundred trials) on
smooth problems, measured in benchmarks/search_quality.py.

scikit-learn fits the model; the loop around it (unit cube, power transform of the values,
pending trials, the acquisition search) is written here because the libraries that had one
(scikit-optimize) are no longer maintained and none handles trials still running: those are
"believed" at the model's mean (kriging believer), so parallel workers get different points.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from hops_jupyter.core.experiment.search.base import Pending, Searcher, check_count
from hops_jupyter.core.experiment.search.space import parse_bounds

if TYPE_CHECKING:
    import numpy as np


def _warp(losses: np.ndarray) -> np.ndarray:
    """Yeo-Johnson power transform and standardization (scikit-learn's PowerTransformer):
    tames values spanning decades (Rosenbrock) while keeping how much better the best are.
    Failures (+inf) count as the worst value seen."""
    import numpy as np  # on first use: fork servers need not load it
    from sklearn.preprocessing import PowerTransformer

    finite = losses[np.isfinite(losses)]
    worst = finite.max() if finite.size else 0.0
    values = np.where(np.isfinite(losses), losses, worst)
    if np.ptp(values) == 0:
        return np.zeros_like(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow chatter on extreme values
        warped = PowerTransformer().fit_transform(values[:, None])[:, 0]
    return warped if np.all(np.isfinite(warped)) else (values - values.mean()) / values.std()


class GPSearch(Searcher):
    """`trials` proposals: a scrambled Sobol start, then the point of highest expected
    improvement under a Matern-5/2 GP with one length scale per dimension."""

    slow_ask = True
    learns = True

    def __init__(self, search_dict: dict[str, Any], trials: int = 50, direction: str = "max",
                 seed: int | None = None, n_startup_trials: int | None = None) -> None:  # fmt: skip
        import numpy as np  # on first use: fork servers need not load it

        super().__init__(direction, seed)
        self.dims = parse_bounds(search_dict)
        self.trials = check_count("trials", trials)
        d = len(self.dims)
        self.n_startup = check_count(
            "n_startup_trials", n_startup_trials if n_startup_trials is not None else max(5, d + 3)
        )
        self._rng = np.random.default_rng(seed)
        from scipy.stats import qmc

        start = qmc.Sobol(d, scramble=True, seed=self._rng.integers(2**31)).random(
            2 ** math.ceil(math.log2(max(2, self.n_startup)))
        )
        self._start = list(start[: self.n_startup])
        self._x: list[np.ndarray] = []
        self._y: list[float] = []
        self._pending = Pending()  # of unit-cube points
        self._asked = 0

    @property
    def total(self) -> int:
        return self.trials

    def _decode(self, u: np.ndarray) -> dict[str, Any]:
        return {dim.name: dim.from_unit(x) for dim, x in zip(self.dims, u, strict=True)}

    def ask(self) -> dict[str, Any] | None:
        if self._asked >= self.trials:
            return None
        self._asked += 1
        if self._start:
            u = self._start.pop(0)
        elif len(self._y) < 2:
            u = self._rng.random(len(self.dims))
        else:
            from threadpoolctl import threadpool_limits

            # Small matrices: one BLAS thread is fastest, and many times faster than threads
            # spinning against trials that keep the other cores busy.
            with threadpool_limits(1):
                u = self._propose()
        params = self._decode(u)
        self._pending.add(params, u)
        return params

    def tell(self, params: dict[str, Any], value: float | None,
             stopped_step: int | None = None) -> None:  # fmt: skip
        u = self._pending.pop(params)
        if u is None:
            return
        self._x.append(u)
        self._y.append(self.loss(value))

    def observe(self, params: dict[str, Any], value: float | None) -> None:
        import numpy as np  # on first use: fork servers need not load it

        self._x.append(np.array([d.to_unit(params[d.name]) for d in self.dims]))
        self._y.append(self.loss(value))

    def _model(self, x: np.ndarray, y: np.ndarray, optimize: bool) -> Any:
        """A GP on (x, y). Optimizing its hyperparameters starts both from the last fit (they
        move little between asks) and from the defaults (so one bad fit is not kept forever),
        and keeps the likelier; without optimizing it reuses the last fit's."""
        import numpy as np  # on first use: fork servers need not load it
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        d = x.shape[1]
        fresh = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            np.full(d, 0.3), (0.03, 30.0), nu=2.5
        ) + WhiteKernel(1e-4, (1e-8, 1e-1))
        previous = getattr(self, "_kernel", None)
        starts = [fresh] if previous is None else [previous, fresh] if optimize else [previous]
        best = None
        for kernel in starts:
            gp = GaussianProcessRegressor(
                kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if optimize else None,
                n_restarts_optimizer=0, random_state=int(self._rng.integers(2**31)),
            )  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter at the kernel's bounds
                gp.fit(x, y)
            if (
                best is None
                or gp.log_marginal_likelihood_value_ > best.log_marginal_likelihood_value_
            ):
                best = gp
        if optimize:
            self._kernel = best.kernel_
        return best

    def _propose(self) -> np.ndarray:
        import numpy as np  # on first use: fork servers need not load it
        from scipy.stats import norm

        x = np.array(self._x)
        y = _warp(np.array(self._y))
        # Refit the hyperparameters at every ask while data is scarce, then every 4th ask.
        gp = self._model(x, y, optimize=len(x) < 40 or len(x) % 4 == 0)
        pending = self._pending.items()
        if pending:  # kriging believer: trials still running count at the model's mean
            xp = np.array(pending)
            x = np.vstack([x, xp])
            y = np.concatenate([y, gp.predict(xp)])
            gp = self._model(x, y, optimize=False)
        best = y.min()
        d = len(self.dims)

        def ei(points: np.ndarray) -> np.ndarray:
            mu, sigma = gp.predict(points, return_std=True)
            sigma = np.maximum(sigma, 1e-9)
            z = (best - mu) / sigma
            return (best - mu) * norm.cdf(z) + sigma * norm.pdf(z)

        top = x[np.argsort(y)[:5]]
        local = np.clip(
            np.repeat(top, 200, axis=0) + self._rng.normal(0, 0.05, (len(top) * 200, d)), 0, 1
        )
        candidates = np.vstack([self._rng.random((2000, d)), local])
        scores = ei(candidates)
        return self._polish(candidates[int(np.argmax(scores))], ei)

    def _polish(self, start: np.ndarray, ei: Any) -> np.ndarray:
        """A few L-BFGS-B steps on the acquisition from the best candidate."""
        import numpy as np  # on first use: fork servers need not load it
        from scipy.optimize import minimize

        result = minimize(
            lambda u: -float(ei(u[None, :])[0]), start, method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * len(start), options={"maxiter": 20},
        )  # fmt: skip
        return np.clip(result.x, 0, 1) if result.fun <= -float(ei(start[None, :])[0]) else start

    def describe(self) -> dict[str, Any]:
        return {d.name: d.describe() for d in self.dims}

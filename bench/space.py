"""Search spaces: scikit-optimize dimensions, the task's default configuration, and a unit-cube
encoding for model-based methods.

A space is declared per task in its YAML file, one entry per hyperparameter::

    space:
      learning_rate: {type: real, low: 0.01, high: 2.0, log: true, default: 0.1}
      hidden_nodes:  {type: int, low: 1, high: 64, default: 2}
      penalty:       {type: categorical, choices: [l1, l2], default: l2}

``default`` is the configuration a paper would call "default settings": the untuned baseline.

Fixing a hyperparameter. ``fixed: VALUE`` on an entry (``+task.space.hidden_nodes.fixed=16`` on the
command line) takes it out of the search: no method tunes it, every configuration carries that
value, and it is the default configuration's value too. The value is checked against the entry's
type and bounds. This is how black-box and hypergradient methods are given exactly the same space:
a hypergradient method tunes only continuous hyperparameters, so the others are fixed for every
method alike. ``names`` lists every declared hyperparameter (a configuration has all of them);
``dimensions``, ``bounds`` and the encoding hold only the tuned ones.

Encoding (``encode``/``decode``): a real or integer dimension maps to one column in [0, 1],
linear or in log space as its prior says (scikit-optimize's ``normalize`` transform); a
categorical dimension maps to one one-hot column per choice. Decoding clips to [0, 1], rounds
integers to the nearest value in the dimension's own scale, and picks the largest one-hot column.
"""

from __future__ import annotations

import copy as _copy
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import qmc
from skopt.space import Categorical, Dimension, Integer, Real

from bench.errors import BenchError

Config = dict[str, Any]
"""One point of a search space: hyperparameter name -> plain Python value."""

PARAM_TYPES = ("real", "int", "categorical")


class SearchSpace:
    """An ordered set of named scikit-optimize dimensions plus the default configuration."""

    def __init__(
        self,
        dimensions: Sequence[Dimension],
        default: Mapping[str, Any],
        fixed: Mapping[str, Any] | None = None,
        order: Sequence[str] | None = None,
        groups: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``dimensions``: the tuned hyperparameters; ``fixed``: name -> value of the fixed ones;
        ``order``: every name in declaration order (default: tuned, then fixed); ``groups``:
        declared name -> the names it was expanded into (``grouped``)."""
        if not dimensions:
            raise BenchError("a search space needs at least one tuned hyperparameter (not every one fixed)")
        self.dimensions: list[Dimension] = list(dimensions)
        self.tuned: list[str] = [dim.name for dim in self.dimensions]
        self.fixed: dict[str, Any] = dict(fixed or {})
        self.names: list[str] = list(order) if order is not None else [*self.tuned, *self.fixed]
        if len(set(self.names)) != len(self.names) or sorted(self.names) != sorted([*self.tuned, *self.fixed]):
            raise BenchError(f"search space has repeated names: {self.names}")
        self._known = frozenset(self.names)  # membership at d = 5,000 entries: a list scan per name was O(d^2)
        self._width = [len(d.categories) if isinstance(d, Categorical) else 1 for d in self.dimensions]
        self.default: Config = self.check({**default, **self.fixed}, where="default")
        self.groups: dict[str, tuple[str, ...]] = {name: tuple(members) for name, members in (groups or {}).items()}
        """Declared name -> the names it was expanded into (``grouped``); a name not here is itself."""
        self._declared = {member: name for name, members in self.groups.items() for member in members}

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, spec: Mapping[str, Mapping[str, Any]], where: str = "task.space") -> SearchSpace:
        """Build a space from its YAML declaration; every error names the offending key."""
        if not isinstance(spec, Mapping) or not spec:
            raise BenchError(f"{where}: expected a mapping of hyperparameter name -> declaration")
        dimensions, default, fixed = [], {}, {}
        for name, entry in spec.items():
            here = f"{where}.{name}"
            if not isinstance(entry, Mapping):
                raise BenchError(f"{here}: expected a mapping with a type, got {entry!r}")
            dimension = _dimension(str(name), entry, here)
            if entry.get("fixed") is not None:
                fixed[str(name)] = _inside(dimension, entry["fixed"], f"{here}.fixed")
                continue
            dimensions.append(dimension)
            if entry.get("default") is None:
                raise BenchError(f"{here}.default is missing: every hyperparameter needs a default value")
            default[str(name)] = entry["default"]
        return cls(dimensions, default, fixed, order=[str(name) for name in spec])

    def grouped(self, name: str, groups: Sequence[str]) -> SearchSpace:
        """This space with the entry ``name`` declared once per group, as ``<name>_<group>``, each
        with the entry's type, bounds, scale, default and fixed value, in the entry's place: how a
        task offers one L2 penalty per group of weights to every method alike. One group keeps the
        entry as it is (its name included)."""
        if name not in self._known:
            raise BenchError(f"cannot group {name!r}: the space has no such entry; it has {', '.join(self.names)}")
        if len(groups) <= 1:
            return self
        members = tuple(f"{name}_{group}" for group in groups)
        taken = sorted(set(members) & self._known) or sorted(m for m, n in Counter(members).items() if n > 1)
        if taken:
            raise BenchError(f"cannot group {name!r}: the names {taken[:3]} are taken or repeated")
        dimensions = []
        for dim in self.dimensions:
            dimensions += [_renamed(dim, member) for member in members] if dim.name == name else [dim]
        fixed = {key: value for key, value in self.fixed.items() if key != name}
        default = {key: value for key, value in self.default.items() if key != name and key not in self.fixed}
        if name in self.fixed:
            fixed |= dict.fromkeys(members, self.fixed[name])
        else:
            default |= dict.fromkeys(members, self.default[name])
        order = [new for old in self.names for new in (members if old == name else (old,))]
        return SearchSpace(dimensions, default, fixed, order, {**self.groups, name: members})

    def fixing(self, values: Mapping[str, Any]) -> SearchSpace:
        """This space with the tuned entries ``values`` names fixed at those values (each checked
        against its bounds), as ``task.space.<name>.fixed`` fixes a declared entry: how a task fixes
        entries whose values only it knows (hyper_cleaning's oracle weights)."""
        unknown = sorted(set(values) - set(self.tuned))
        if unknown:
            raise BenchError(f"cannot fix {unknown[:3]}: not tuned entries of the space")
        dimensions = [dim for dim in self.dimensions if dim.name not in values]
        fixed = {
            **self.fixed,
            **{d.name: _inside(d, values[d.name], d.name) for d in self.dimensions if d.name in values},
        }
        default = {key: value for key, value in self.default.items() if key not in fixed}
        return SearchSpace(dimensions, default, fixed, self.names, self.groups)

    def extended(self, like: str, names: Sequence[str]) -> SearchSpace:
        """This space with more entries ``names`` after the others, each a copy of the entry
        ``like`` (type, bounds, scale, default): a synthetic function embedded in more dimensions."""
        if like not in self.tuned:
            raise BenchError(f"cannot copy {like!r}: the space tunes no such entry; it tunes {', '.join(self.tuned)}")
        taken = sorted(set(names) & set(self.names))
        if taken or len(set(names)) != len(names):
            raise BenchError(f"cannot add {taken[:3] or list(names)[:3]}: names taken or repeated")
        template = next(dim for dim in self.dimensions if dim.name == like)
        dimensions = [*self.dimensions, *(_renamed(template, name) for name in names)]
        default = {key: value for key, value in self.default.items() if key not in self.fixed}
        default |= dict.fromkeys(names, self.default[like])
        return SearchSpace(dimensions, default, self.fixed, [*self.names, *names], self.groups)

    def members(self, name: str) -> tuple[str, ...]:
        """The names the declared entry ``name`` became: its groups (``grouped``), or itself."""
        return self.groups.get(name, (name,))

    def declares(self, name: str) -> bool:
        """Whether ``name`` is a declared entry: one of the names, or a grouped entry (``l2``)."""
        return name in self._known or name in self.groups

    def declared(self, name: str) -> str:
        """The declared entry a name comes from (``l2`` for ``l2_layer_0``)."""
        return self._declared.get(name, name)

    # ----------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        """The number of tuned hyperparameters."""
        return len(self.dimensions)

    def __repr__(self) -> str:
        described = {d.name: _describe(d) for d in self.dimensions}
        described |= {name: f"{name}={value!r} fixed" for name, value in self.fixed.items()}
        shown = []
        for name in self.names:
            base = self.declared(name)
            if base == name:
                shown.append(described[name])
            elif name == self.groups[base][0]:  # a group of entries reads as one line
                members = self.groups[base]
                text = described[name].replace(name, f"{base}_<group> ({len(members)} groups: {name}..{members[-1]})")
                shown.append(text)
        return f"SearchSpace({', '.join(shown)})"

    @property
    def n_encoded(self) -> int:
        """Number of columns of the unit-cube encoding."""
        return sum(self._width)

    @property
    def bounds(self) -> dict[str, tuple[Any, Any]]:
        """(low, high) of each numeric hyperparameter, by name (categoricals have none)."""
        return {
            d.name: (_plain(d, d.low), _plain(d, d.high)) for d in self.dimensions if not isinstance(d, Categorical)
        }

    def check(self, config: Mapping[str, Any], where: str = "config") -> Config:
        """Return the full configuration (every name, in declaration order) with plain Python values,
        or raise naming what is outside the space. Fixed hyperparameters may be left out; if given,
        they must have their fixed value."""
        missing = [n for n in self.tuned if n not in config]
        extra = [n for n in config if n not in self._known]
        if missing or extra:
            raise BenchError(
                f"{where}: keys {sorted(config)} do not match the space {self.names}"
                + (f" (missing {missing})" if missing else "")
                + (f" (unknown {extra})" if extra else "")
            )
        out = {}
        for dim in self.dimensions:
            out[dim.name] = _inside(dim, config[dim.name], f"{where}.{dim.name}")
        for name, value in self.fixed.items():
            if name in config and not _same(config[name], value):
                raise BenchError(f"{where}.{name}={config[name]!r}: {name} is fixed at {value!r}")
        return self._complete(out)

    def _complete(self, tuned: Mapping[str, Any]) -> Config:
        """Tuned values plus the fixed ones, in declaration order."""
        values = {**tuned, **self.fixed}
        return {name: values[name] for name in self.names}

    def __contains__(self, config: object) -> bool:
        try:
            self.check(config)  # type: ignore[arg-type]
        except (BenchError, TypeError, ValueError):
            return False
        return True

    # ----------------------------------------------------------------------------- sampling
    def sample(self, n: int, rng: np.random.Generator) -> list[Config]:
        """``n`` independent draws from each dimension's prior (log-uniform where declared)."""
        state = np.random.RandomState(int(rng.integers(2**32)))
        columns = [dim.rvs(n_samples=n, random_state=state) for dim in self.dimensions]
        return self._rows(columns, n)

    def _rows(self, columns: Sequence[Sequence[Any]], n: int) -> list[Config]:
        """One full configuration per row of ``columns`` (one column per tuned dimension)."""
        return [
            self._complete(
                {dim.name: _plain(dim, column[i]) for dim, column in zip(self.dimensions, columns, strict=True)}
            )
            for i in range(n)
        ]

    def sobol(self, n: int, seed: int) -> list[Config]:
        """The shared initial design: ``n`` scrambled Sobol points, one coordinate per
        hyperparameter, mapped through each dimension's scale (log where declared); a categorical
        coordinate picks choice ``floor(u * k)``. The same ``(n, seed)`` gives the same points to
        every method, so for one seed all model-based methods start from the same trials."""
        if n <= 0:
            return []
        sampler = qmc.Sobol(d=len(self.dimensions), scramble=True, seed=np.random.default_rng([seed, 0x50B0]))
        u = sampler.random_base2(max(0, math.ceil(math.log2(n))))[:n]  # a power of two keeps the balance
        columns = []
        for j, dim in enumerate(self.dimensions):
            if isinstance(dim, Categorical):
                k = len(dim.categories)
                columns.append([dim.categories[min(int(x * k), k - 1)] for x in u[:, j]])
            else:
                columns.append(np.clip(dim.inverse_transform(u[:, j]), dim.low, dim.high))
        return self._rows(columns, n)

    # ----------------------------------------------------------------------------- encoding
    def indexed(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The tuned values with each categorical as the index of its choice (what optimisers that
        want plain numbers are told: Optuna's categorical indices, scikit-optimize's points)."""
        return {
            dim.name: dim.categories.index(config[dim.name]) if isinstance(dim, Categorical) else config[dim.name]
            for dim in self.dimensions
        }

    def from_indexed(self, values: Mapping[str, Any]) -> Config:
        """The inverse of ``indexed``: tuned values by name, a categorical given by its index."""
        return {
            dim.name: dim.categories[int(values[dim.name])] if isinstance(dim, Categorical) else values[dim.name]
            for dim in self.dimensions
        }

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Configurations -> array of shape ``(len(configs), n_encoded)`` with entries in [0, 1]."""
        out = np.zeros((len(configs), self.n_encoded))
        column = 0
        for dim, width in zip(self.dimensions, self._width, strict=True):
            values = [_plain(dim, c[dim.name]) for c in configs]
            if isinstance(dim, Categorical):
                for row, value in enumerate(values):
                    out[row, column + dim.categories.index(value)] = 1.0
            elif values:
                out[:, column] = dim.transform(values)
            column += width
        return out

    def decode(self, x: np.ndarray) -> list[Config]:
        """Array of shape ``(n, n_encoded)`` -> configurations inside the space."""
        x = np.clip(np.atleast_2d(np.asarray(x, dtype=float)), 0.0, 1.0)
        if x.shape[1] != self.n_encoded:
            raise ValueError(f"expected {self.n_encoded} columns, got {x.shape[1]}")
        columns = []
        start = 0
        for dim, width in zip(self.dimensions, self._width, strict=True):
            block = x[:, start : start + width]
            if isinstance(dim, Categorical):
                columns.append([dim.categories[i] for i in block.argmax(axis=1)])
            else:  # float error in the log transform can step just past a bound
                columns.append(np.clip(dim.inverse_transform(block[:, 0]), dim.low, dim.high))
            start += width
        return self._rows(columns, len(x))


def _dimension(name: str, entry: Mapping[str, Any], here: str) -> Dimension:
    kind = entry.get("type")
    if kind not in PARAM_TYPES:
        raise BenchError(f"{here}.type={kind!r}: allowed types are {', '.join(PARAM_TYPES)}")
    known = {"type", "default", "fixed"} | ({"choices"} if kind == "categorical" else {"low", "high", "log"})
    if kind == "real":
        known.add("log_complement")
    unknown = sorted(set(entry) - known)
    if unknown:
        raise BenchError(f"{here}: unknown key(s) {unknown} for type {kind}; allowed: {sorted(known)}")
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or len(choices) < 2:
            raise BenchError(f"{here}.choices={choices!r}: give a list of at least two choices")
        choices = [tuple(c) if isinstance(c, (list, tuple)) else c for c in choices]
        if len(set(map(repr, choices))) != len(choices):
            raise BenchError(f"{here}.choices={choices!r}: choices must be distinct")
        return Categorical(choices, transform="onehot", name=name)
    low, high, log = entry.get("low"), entry.get("high"), entry.get("log", False)
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BenchError(f"{here}.{key}={value!r}: must be a finite number")
    if not isinstance(log, bool):
        raise BenchError(f"{here}.log={log!r}: must be true or false")
    if not low < high:
        raise BenchError(f"{here}: low={low} must be below high={high}")
    if log and low <= 0:
        raise BenchError(f"{here}: low={low} must be positive on a log scale")
    complement = entry.get("log_complement", False)
    if not isinstance(complement, bool) or (complement and (log or high >= 1)):
        raise BenchError(
            f"{here}.log_complement={complement!r}: true (1 - value log-uniform) needs high < 1 and log false"
        )
    if complement:
        return LogComplementReal(float(low), float(high), name=name)
    prior = "log-uniform" if log else "uniform"
    if kind == "int":
        if int(low) != low or int(high) != high:
            raise BenchError(f"{here}: low={low} and high={high} must be whole numbers for type int")
        return Integer(int(low), int(high), prior=prior, transform="normalize", name=name)
    return Real(float(low), float(high), prior=prior, transform="normalize", name=name)


class LogComplementReal(Real):
    """A real in [low, high], high < 1, whose complement 1 - value is log-uniform: Greff et al.'s
    momentum, "1 - log-uniform [0.01, 1]", is ``{type: real, low: 0, high: 0.99, log_complement:
    true}``. Sampling, the unit-cube encoding and its inverse all work on log(1 - value), so
    model-based methods see the scale the prior is uniform in (the encoding increases with the
    value). scikit-optimize reads the same transforms; Optuna has no such prior and samples the
    value uniformly (methods/optuna_samplers.py)."""

    def __init__(self, low: float, high: float, name: str) -> None:
        super().__init__(low, high, prior="uniform", transform="normalize", name=name)
        self.complement = Real(1.0 - high, 1.0 - low, prior="log-uniform", transform="normalize")

    def rvs(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        return self._clip(1.0 - np.asarray(self.complement.rvs(n_samples=n_samples, random_state=random_state)))

    def transform(self, X: Any) -> np.ndarray:
        return 1.0 - np.asarray(
            self.complement.transform(np.clip(1.0 - np.asarray(X, dtype=float), *self.complement.bounds))
        )

    def inverse_transform(self, Xt: Any) -> np.ndarray:
        return self._clip(1.0 - np.asarray(self.complement.inverse_transform(1.0 - np.asarray(Xt, dtype=float))))

    def _clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.low, self.high)


def _renamed(dim: Dimension, name: str) -> Dimension:
    """A copy of ``dim`` under another name (the same prior, bounds and transform)."""
    if isinstance(dim, Categorical):
        raise BenchError(f"cannot group {dim.name!r}: only a numeric entry can be declared once per group")
    copy = _copy.copy(dim)
    copy.name = name
    return copy


def _inside(dim: Dimension, value: Any, where: str) -> Any:
    """``value`` as the dimension's plain Python value, or a one-line error naming ``where``."""
    try:
        value = _plain(dim, value)
    except BenchError as error:  # _plain names the dimension; here the error names the key given
        raise BenchError(f"{where}={value!r}: {str(error).split(': ', 1)[-1]}; allowed: {_describe(dim)}") from None
    if value not in dim:
        raise BenchError(f"{where}={value!r} is outside {_describe(dim)}")
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal as configuration values: 16 == 16.0, but True is not 1 and [1, 2] is (1, 2)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and tuple(a) == tuple(b)
    if isinstance(a, (bool, np.bool_)) != isinstance(b, (bool, np.bool_)):
        return False
    return bool(a == b)


def _plain(dim: Dimension, value: Any) -> Any:
    """Convert numpy scalars and JSON lists to the Python value the dimension holds."""
    if isinstance(dim, Categorical):
        if isinstance(value, (list, np.ndarray)):
            value = tuple(np.asarray(value).tolist())
        value = value.item() if isinstance(value, np.generic) else value
        for choice in dim.categories:  # match 1 == 1.0 == True carefully: same type first
            if type(choice) is type(value) and choice == value:
                return choice
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise BenchError(f"{dim.name}={value!r}: expected a number")
    if isinstance(dim, Integer):
        if float(value) != round(float(value)):
            raise BenchError(f"{dim.name}={value!r}: expected a whole number")
        return int(round(float(value)))
    return float(value)


def _describe(dim: Dimension) -> str:
    if isinstance(dim, Categorical):
        return f"{dim.name} in {list(dim.categories)}"
    scale = (
        ", log" if dim.prior == "log-uniform" else ", log of 1 - value" if isinstance(dim, LogComplementReal) else ""
    )
    kind = "int" if isinstance(dim, Integer) else "real"
    return f"{dim.name} {kind} [{dim.low}, {dim.high}{scale}]"

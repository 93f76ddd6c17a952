"""The trained part of Ma et al.'s metric: its 138 features, the three regression forests and the
linear weights of the authors' ``model.mat``, and the loader that finds and checks that file.

The forests follow ``regRF_predict`` of randomforest-matlab and the score ``quality_predict.m``
(:mod:`superres.metrics.nrqm` describes the whole metric).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from superres.assets import asset_path
from superres.errors import InvalidAssetError

__all__ = ["MA_FEATURE_SIZES", "MaFeatures", "MaModel", "RegressionForest", "load_ma_model"]

#: Lengths of the three feature groups: block-DCT (f1), steerable-pyramid (f2), patch-SVD (f3).
MA_FEATURE_SIZES = (18, 45, 75)


@dataclass(frozen=True)
class MaFeatures:
    """The three feature groups of Ma et al., in the release's order (float64).

    Attributes:
        dct: ``(18,)`` block-DCT statistics, 6 per scale (f1, ``block_dct.m``).
        gsm: ``(45,)`` steerable-pyramid statistics (f2, ``global_gsm.m``).
        svd: ``(75,)`` singular values of 5x5 patches, 25 per scale (f3).
    """

    dct: np.ndarray
    gsm: np.ndarray
    svd: np.ndarray

    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f1, f2, f3)``, the inputs of the three forests."""
        return self.dct, self.gsm, self.svd


@dataclass(frozen=True)
class RegressionForest:
    """One regression forest of randomforest-matlab (Liaw and Wiener's ``randomForest`` code).

    Node arrays are ``(n_nodes, n_trees)``; node 0 is each tree's root.

    Attributes:
        left: 0-based left child (taken when ``x[var] <= split``); -1 at a leaf.
        right: 0-based right child; -1 at a leaf.
        var: 0-based feature index of the split; -1 at a leaf.
        split: split thresholds (the file's ``upper``).
        value: node predictions (the file's ``avnode``), used at the leaves.
        coef: ``(2,)`` bias correction ``coef[0] + coef[1] * y``, applied only when non-zero
            (``regRF_predict``; the release trained without it).
        n_features: length of the feature vector the forest expects.
    """

    left: np.ndarray
    right: np.ndarray
    var: np.ndarray
    split: np.ndarray
    value: np.ndarray
    coef: np.ndarray
    n_features: int

    @property
    def n_trees(self) -> int:
        return int(self.left.shape[1])

    def predict(self, features: np.ndarray) -> float:
        """The forest's prediction for one feature vector ``(n_features,)``: mean of the trees."""
        x = np.asarray(features, dtype=np.float64)
        if x.shape != (self.n_features,):
            raise ValueError(
                f"this forest expects {self.n_features} features; got shape {tuple(x.shape)}"
            )
        trees = np.arange(self.n_trees)
        node = np.zeros(self.n_trees, dtype=np.intp)
        for _ in range(self.left.shape[0]):  # children follow their parent: depth < n_nodes
            active = self.left[node, trees] >= 0
            if not active.any():
                break
            n, t = node[active], trees[active]
            go_left = x[self.var[n, t]] <= self.split[n, t]
            node[active] = np.where(go_left, self.left[n, t], self.right[n, t])
        # regForest sums the trees in order, then divides by their number.
        y = float(np.cumsum(self.value[node, trees])[-1]) / self.n_trees
        if np.any(self.coef != 0):
            y = float(self.coef[0] + self.coef[1] * y)
        return y


@dataclass(frozen=True)
class MaModel:
    """The trained Ma model: three forests (f1, f2, f3) and the linear weights ``(4,)``."""

    forests: tuple[RegressionForest, RegressionForest, RegressionForest]
    linear: np.ndarray

    def forest_outputs(self, features: MaFeatures) -> tuple[float, float, float]:
        """``(s1, s2, s3)``: each forest on its feature group."""
        s = [f.predict(x) for f, x in zip(self.forests, features.groups(), strict=True)]
        return s[0], s[1], s[2]

    def predict(self, features: MaFeatures) -> float:
        """``[1, s1, s2, s3] @ linear``: the Ma score."""
        s = self.forest_outputs(features)
        return float(np.array([1.0, *s]) @ self.linear)


def _provide_hint() -> str:
    return (
        "Ma's metric needs its trained model, the asset ma/model (`superres assets` says where "
        "to put it), or pass a local model.mat of the authors' release as model=... "
        "(ma_model=... for perceptual_index, --ma-model)."
    )


def load_ma_model(
    model: str | os.PathLike[str] | MaModel | None = None,
    *,
    data_root: str | os.PathLike[str] | None = None,
) -> MaModel:
    """Locate, read and check the trained Ma model (cached per file).

    The file is a MATLAB v5/v7 ``.mat`` (read with ``scipy.io.loadmat``; v7.3/HDF5 files must be
    re-saved with ``save(..., '-v7')``) holding one variable ``model``, a struct with

    * ``linear``: 4 values ``[b0; b1; b2; b3]`` (``robustfit`` of the forests' outputs);
    * ``rf``: a cell of 3 structs (3x1 or 1x3), the ``regRF_train`` outputs for f1 (18 features),
      f2 (45) and f3 (75), each with ``lDau``, ``rDau`` (1-based children, 0 at a leaf),
      ``mbest`` (1-based split feature), ``upper`` (split threshold) and ``avnode`` (node value),
      all ``nrnodes x ntree``, and optionally ``coef`` (2 values, the bias correction).

    Other fields (``nodestatus``, ``ndtree``, ``mse``, ...) are not needed. A node is a leaf when
    its ``lDau`` is 0: for every tree randomForest builds this is exactly the ``nodestatus ==
    NODE_TERMINAL`` test of the MEX predictor, and it avoids ``nodestatus``, which the training MEX
    stores as 1-byte values packed into a MATLAB char array (2 bytes per char).

    Args:
        model: a local file, used as given (no hash check); ``None``: the asset ``ma/model``
            (a copy in the download cache or the data root; never downloaded); or a loaded
            :class:`MaModel`, returned as it is.
        data_root: the data root to look in (default ``SUPERRES_DATA``).

    Raises:
        AssetNotFoundError: no model file is here (the message says where to put one).
        InvalidAssetError: the file cannot be read or does not have the structure above.
    """
    if isinstance(model, MaModel):
        return model
    path = asset_path("ma/model", path=model, data_root=data_root)
    stat = path.stat()
    return _read_model(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_model(path: str, mtime_ns: int, size: int) -> MaModel:
    """Read and validate a model file (cached per path, modification time and size)."""
    del mtime_ns, size  # only part of the cache key, so an edited file is read again
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=["model"])
    except NotImplementedError as exc:  # scipy's answer to a v7.3 (HDF5) file
        raise InvalidAssetError(
            f"{path!r} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it in "
            "MATLAB with save('model.mat', 'model', '-v7'). " + _provide_hint()
        ) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidAssetError(
            f"cannot read {path!r} as a MATLAB .mat file: {exc}. {_provide_hint()}"
        ) from exc
    if "model" not in data:
        raise InvalidAssetError(
            f"{path!r} has no variable 'model'; expected the release's model.mat (a struct with "
            f"fields 'rf' and 'linear'). {_provide_hint()}"
        )
    root = data["model"]
    linear = np.asarray(_field(root, "linear", path), dtype=np.float64).ravel()
    if linear.shape != (4,) or not np.isfinite(linear).all():
        raise InvalidAssetError(
            f"{path!r}: model.linear has {linear.size} values or non-finite ones; expected 4 "
            f"finite weights [b0; b1; b2; b3]. {_provide_hint()}"
        )
    cells = np.asarray(_field(root, "rf", path))
    if cells.dtype != object or cells.size != 3:
        raise InvalidAssetError(
            f"{path!r}: model.rf is not a cell of 3 forests (got {cells.dtype} with "
            f"{cells.size} elements). {_provide_hint()}"
        )
    flat = cells.ravel(order="F")  # rf{1}, rf{2}, rf{3}
    forests = tuple(
        _read_forest(flat[i], n, f"model.rf{{{i + 1}}}", path)
        for i, n in enumerate(MA_FEATURE_SIZES)
    )
    return MaModel(forests=(forests[0], forests[1], forests[2]), linear=linear)


def _field(struct: Any, name: str, path: str) -> Any:
    """Field ``name`` of a 1x1 MATLAB struct as loaded by scipy (a structured array)."""
    arr = np.asarray(struct)
    if arr.dtype.names is None or name not in arr.dtype.names or arr.size != 1:
        have = ", ".join(arr.dtype.names or ()) or "none"
        raise InvalidAssetError(
            f"{path!r}: expected a 1x1 struct with a field {name!r} (fields found: {have}). "
            + _provide_hint()
        )
    return arr.ravel()[0][name]


def _read_forest(struct: Any, n_features: int, where: str, path: str) -> RegressionForest:
    """One ``regRF_train`` struct -> a compact, validated :class:`RegressionForest`."""
    arrays = {
        name: np.asarray(_field(struct, name, path))
        for name in ("lDau", "rDau", "mbest", "upper", "avnode")
    }
    shape = arrays["lDau"].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrays.values()) or 0 in shape:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        raise InvalidAssetError(
            f"{path!r}: {where} needs lDau, rDau, mbest, upper and avnode of one shape "
            f"(nrnodes x ntree); got {shapes}. {_provide_hint()}"
        )
    try:
        coef = np.asarray(_field(struct, "coef", path), dtype=np.float64).ravel()
    except InvalidAssetError:
        coef = np.zeros(2)
    if coef.size == 0:
        coef = np.zeros(2)
    left1 = arrays["lDau"].astype(np.int64)
    right1 = arrays["rDau"].astype(np.int64)
    var1 = arrays["mbest"].astype(np.int64)
    split = arrays["upper"].astype(np.float64)
    value = arrays["avnode"].astype(np.float64)
    # Keep the rows up to the last one referenced (the release pads every tree to nrnodes).
    rows = max(1, int(left1.max(initial=0)), int(right1.max(initial=0)))
    if rows > shape[0]:
        raise InvalidAssetError(
            f"{path!r}: {where} has child indices up to {rows} but only {shape[0]} nodes. "
            + _provide_hint()
        )
    left1, right1, var1 = left1[:rows], right1[:rows], var1[:rows]
    split, value = split[:rows], value[:rows]
    interior = left1 > 0
    node = np.arange(1, rows + 1)[:, None]  # 1-based node numbers
    ok = (
        ((left1 > node) | ~interior).all()  # randomForest appends children after their parent
        and ((right1 > node) | ~interior).all()
        and (var1[interior] >= 1).all()
        and (var1[interior] <= n_features).all()
        and np.isfinite(split[interior]).all()
        and np.isfinite(value).all()
        and coef.shape == (2,)
    )
    if not ok:
        raise InvalidAssetError(
            f"{path!r}: {where} is not a valid regression forest over {n_features} features "
            "(children must follow their parent, split features lie in 1.."
            f"{n_features}, values be finite, coef have 2 values). {_provide_hint()}"
        )
    return RegressionForest(
        left=np.where(interior, left1 - 1, -1).astype(np.intp),
        right=np.where(interior, right1 - 1, -1).astype(np.intp),
        var=np.where(interior, var1 - 1, -1).astype(np.intp),
        split=np.ascontiguousarray(split),
        value=np.ascontiguousarray(value),
        coef=coef,
        n_features=n_features,
    )

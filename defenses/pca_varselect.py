"""PCA-VarSelect: unsupervised shilling detection by principal-component variable selection.

Mehta, B. & Nejdl, W. (2009). "Unsupervised strategies for shilling detection and robust
collaborative filtering". User Modeling and User-Adapted Interaction 19(1-2), 65-97.

Idea (the paper's): fake profiles built by the same recipe are highly correlated with each other
and carry little of the variance that real users share, so on the top principal components of the
z-scored data, with USERS AS THE VARIABLES (the paper transposes the rating matrix: items are the
observations, users the dimensions), they have small coefficients. The users with the smallest
contribution to the first few components are flagged.

Threat model: the defender sees only the training interactions (real and injected users mixed,
no labels, no item text, no simulated fakes). It assumes an attack size (``flag_share``).

Adaptation to implicit sequential data: the rating matrix becomes the binary user x item
incidence matrix ``B`` (1 when the item occurs anywhere in the user's training sequence; order and
repeats are dropped), restricted to the ``m`` items that occur in the training data (an item nobody
holds carries no information). Each user's row is z-scored over those items: with ``d_u`` distinct
items, ``mu_u = d_u / m`` and ``sigma_u = sqrt(mu_u (1 - mu_u))``, so ::

    Z = diag(1 / sigma) (B - mu 1^T)            (users x items, never formed densely)

The paper's covariance matrix of the user variables is ``Z Z^T / m`` (users x users, the users'
correlation matrix); its eigenvectors, the principal components expressed as coefficients over
users, are the LEFT singular vectors ``U`` of ``Z = U S V^T``. The loading of user ``u`` on
component ``k`` is ``U[u, k]``, and the score here is ::

    suspicion_u = - sum_{k < components} U[u, k] ** 2     (times n_users / components)

(the squared coefficients, so the sign ambiguity of singular vectors does not matter; the sum is
the user's leverage on the top-``components`` subspace, invariant to rotations inside it; the
constant factor makes the mean leverage 1, so scores stay O(1) for 22k users and survive rounding
in stored results, without changing the order). ``U`` is
computed with ARPACK (``scipy.sparse.linalg.svds``, seeded start vector) on a
:class:`~scipy.sparse.linalg.LinearOperator` that applies ``Z x = (B x) / sigma - (mu / sigma)(1^T x)``
and ``Z^T y = B^T (y / sigma) - 1 ((mu / sigma)^T y)``: only the sparse ``B`` is stored, so 22k users x
12k items costs a few sparse products. A user whose row has no variance (no item, or every item)
cannot be standardised; its row is set to 0 (loading 0: most suspicious), which only matters for
degenerate data.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.sparse.linalg import LinearOperator, svds

from defenses.base import DefenseInputs, DetectorParams, UserDetector
from redteam.seeding import numpy_rng

__all__ = ["PCAVarSelect", "incidence_matrix", "user_loadings"]


class PCAVarSelectParams(DetectorParams):
    components: int = Field(3, ge=1, description="top principal components (users as variables) a user must load on")


def incidence_matrix(train: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary users x items CSR matrix (column ``i - 1`` = item id ``i``; repeats count once)."""
    lengths = np.array([len(s) for s in train], dtype=np.int64)
    items = np.concatenate([np.asarray(s, dtype=np.int64).reshape(-1) for s in train]) if len(train) else np.zeros(0, np.int64)
    if items.size and (items.min() < 1 or items.max() > n_items):
        raise ValueError(f"training item ids must lie in 1..{n_items}")
    rows = np.repeat(np.arange(len(train), dtype=np.int64), lengths)
    matrix = sp.csr_matrix((np.ones(items.size, dtype=np.float64), (rows, items - 1)), shape=(len(train), n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def user_loadings(train: list[np.ndarray], n_items: int, components: int, seed: int, *, dense: bool = False) -> np.ndarray:
    """``U[:, :components]``: the users' loadings on the top principal components of the row-z-scored
    incidence matrix (see the module docstring). ``dense=True`` forms ``Z`` and uses a full SVD (for
    checks on small data only)."""
    b = incidence_matrix(train, n_items)
    b = b[:, np.flatnonzero(b.getnnz(axis=0))].tocsr()  # items present in the training data
    n_users, m = b.shape
    if n_users == 0 or m == 0:
        return np.zeros((n_users, 0))
    mu = np.asarray(b.sum(axis=1)).ravel() / m
    sigma = np.sqrt(mu * (1.0 - mu))
    ok = sigma > 0
    inv = np.where(ok, 1.0 / np.where(ok, sigma, 1.0), 0.0)  # a constant row is set to 0
    shift = mu * inv
    k = min(components, n_users, m)
    if dense or k >= min(n_users, m) - 1:  # ARPACK needs k < min(shape); such data are tiny
        z = (b.toarray() - mu[:, None]) * inv[:, None]
        u, s, _ = np.linalg.svd(z, full_matrices=False)
        return u[:, :k]
    bt = b.T.tocsr()

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(m, -1)
        return (b @ x) * inv[:, None] - np.outer(shift, x.sum(axis=0))

    def rmatvec(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y).reshape(n_users, -1)
        return bt @ (y * inv[:, None]) - (shift @ y)[None, :]

    op = LinearOperator((n_users, m), matvec=matvec, rmatvec=rmatvec, matmat=matvec, rmatmat=rmatvec, dtype=np.float64)
    v0 = numpy_rng(seed, "defenses", "pca_varselect", "v0").standard_normal(min(n_users, m))
    u, _, _ = svds(op, k=k, v0=v0, solver="arpack", return_singular_vectors="u")
    return u


class PCAVarSelect(UserDetector):
    """Flags the users loading least on the top principal components (Mehta & Nejdl 2009)."""

    alias: ClassVar[str] = "pca_varselect"
    Params: ClassVar[type[PCAVarSelectParams]] = PCAVarSelectParams

    def score_users(self, inputs: DefenseInputs) -> np.ndarray:
        loadings = user_loadings(inputs.train, inputs.n_items, self.params.components, inputs.seed)
        if loadings.shape[1] == 0:
            return np.zeros(len(inputs.train))
        # Relative leverage (mean 1 over users): O(1) values that survive rounding, same order.
        return -np.sum(loadings**2, axis=1) * len(loadings) / loadings.shape[1]

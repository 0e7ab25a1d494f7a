"""Sample quality measured in the course classifier's feature space.

FD-FMNIST is the Fréchet distance of Heusel et al. (2017, eq. in section 3), the formula behind
FID, between Gaussians fitted to the classifier's penultimate features of two image sets:

    d² = ‖μ_1 − μ_2‖² + Tr(Σ_1 + Σ_2 − 2 (Σ_1 Σ_2)^{1/2}).

It is *not* comparable with published FIDs (different network, different data); always read it
beside its baselines: real-vs-real at the same number of images (the floor: FD is biased upwards
for small sets, so only equal sizes compare) and noise (the ceiling). KID (:func:`kid`), unbiased,
stands beside it.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import sys

import torch

from gensynth_course import cache
from gensynth_course.data.fashion_mnist import as_model_input
from gensynth_course.device import model_device
from gensynth_course.evaluation import stats


def check_images(images: torch.Tensor) -> None:
    """Refuse images that are neither uint8 [0, 255] nor finite floats in [-1, 1] (a margin of
    1e-3 is allowed for rounding, and clamped away later)."""
    if images.dtype == torch.uint8:
        return
    if not images.is_floating_point():
        raise ValueError(f"images are {images.dtype}; pass uint8 images in [0, 255] or floats in [-1, 1].")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values; check what produced them (a diverged "
                         "model?) before measuring them.")
    low, high = (float(v) for v in images.aminmax())
    if low < -1 - 1e-3 or high > 1 + 1e-3:
        raise ValueError(f"float images must lie in [-1, 1], but these run from {low:.4g} to {high:.4g}; "
                         "pass uint8 images, or scale floats to [-1, 1] (0-255 floats: x / 127.5 - 1).")


@torch.no_grad()
def features(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate features of images given as uint8 [0, 255] or floats in [-1, 1] (anything else
    is refused by :func:`check_images`)."""
    check_images(images)
    classifier.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = as_model_input(x)
        out.append(classifier.features(x).double())
    return torch.cat(out)


def kept_features(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """:func:`features` of a fixed reference set (the 10,000 test images: seconds of a CPU each time
    a chapter or an eval builds its FD), kept in the cache under a hash of everything they depend
    on: the classifier's weights and buffers, its class's module and this one, the images, and the
    kind of device. An unreadable file is computed again."""
    key = hashlib.sha256()
    for name, tensor in classifier.state_dict().items():
        key.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    for module in (inspect.getmodule(type(classifier)), sys.modules[__name__]):
        key.update(inspect.getsource(module).encode())
    device = model_device(classifier)
    key.update(images.cpu().contiguous().numpy().tobytes() + str(images.dtype).encode() + device.type.encode())
    path = cache.cache_dir() / "features" / f"{type(classifier).__name__.lower()}-{key.hexdigest()[:20]}.pt"
    try:
        return cache.load_safe(path)["features"].to(device)
    except cache.CorruptCheckpoint:
        pass
    feats = features(classifier, images)
    try:
        cache.save_atomic({"format": cache.FORMAT, "features": feats.cpu()}, path)
    except OSError:                      # a cache that cannot be written only costs the next run time
        pass
    return feats


def gaussian_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of features (N, D), N ≥ 2."""
    if len(feats) < 2:
        raise ValueError(f"a Gaussian needs at least 2 images to fit, got {len(feats)}; pass more images "
                         "(hundreds or more for a stable Fréchet distance).")
    feats = feats.double()
    return feats.mean(0), torch.cov(feats.T)


def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a positive semi-definite matrix (negative round-off clipped)."""
    vals, vecs = torch.linalg.eigh(m.double())
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2, sigma2_half: torch.Tensor | None = None) -> float:
    """d² between N(μ_1, Σ_1) and N(μ_2, Σ_2).

    Tr (Σ_1 Σ_2)^{1/2} is computed as Σ √λ_i, with λ_i the eigenvalues of the symmetric matrix
    Σ_2^{1/2} Σ_1 Σ_2^{1/2}, which has the same spectrum as Σ_1 Σ_2 and is numerically stabler.
    ``sigma2_half``: Σ_2^{1/2} computed once, for many distances to one reference (a bootstrap).
    """
    half = sqrtm_psd(sigma2) if sigma2_half is None else sigma2_half
    inner = half @ sigma1.double() @ half
    tr_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    diff = (mu1 - mu2).double()
    return float(diff @ diff + torch.trace(sigma1) + torch.trace(sigma2) - 2 * tr_sqrt)


@stats.counted
def frechet_distance_of_rows(rows, mu2, sigma2, sigma2_half: torch.Tensor, counts=None):
    """d² between the Gaussian fitted to feature rows (N, D) (:func:`gaussian_stats`) and N(μ_2, Σ_2),
    for the many distances a bootstrap recomputes (``sigma2_half``: Σ_2^{1/2}, computed once). With
    ``counts`` (B, N), the B distances of the sets that hold row i ``counts[b, i]`` times (a
    bootstrap's resamples, :func:`stats.counted`), as an array.

    With X a set's rows (each as often as counted) centred and over √(m − 1), for its m rows,
    Σ_1 = XᵀX and Tr Σ_1 = ‖X‖²_F, and Tr (Σ_1 Σ_2)^{1/2} is Σ √λ_i over the eigenvalues of
    Σ_2^{1/2} Σ_1 Σ_2^{1/2} (as in :func:`frechet_distance`). Every set's second moment is its counts
    times the rows' outer products: one matrix product for all B sets. With fewer rows than
    features, Σ_2^{1/2} Σ_1 Σ_2^{1/2} = YᵀY with Y = X Σ_2^{1/2}, whose nonzero eigenvalues are those
    of the N × N matrix YYᵀ: several times cheaper for the tens of samples of a quick run, and
    without round-off eigenvalues in place of Σ_1's exact zeros."""
    rows = torch.as_tensor(rows).double()
    n, dim = rows.shape
    if counts is None and n >= dim:                  # one set with Σ_1 of full size: the plain distance
        return frechet_distance(*gaussian_stats(rows), mu2, sigma2, sigma2_half)
    weights = torch.ones(1, n, dtype=torch.double) if counts is None else torch.as_tensor(counts).double()
    size = weights.sum(1)
    if size.min() < 2:
        raise ValueError(f"a Gaussian needs at least 2 images to fit, got {int(size.min())}; pass more images "
                         "(hundreds or more for a stable Fréchet distance).")
    centre = rows.mean(0)
    r = rows - centre                                   # centred once: the moments below lose no digits
    mu = weights @ r / size[:, None]                    # (B, D): each set's mean, less the centre
    half = sigma2_half.double()
    if n < dim:                                         # 64 sets at a time: their (64, N, D) blocks stay small
        trace1, eigenvalues = [], []
        for w, m, k in zip(weights.split(64), mu.split(64), size.split(64)):
            x = w.sqrt()[:, :, None] * (r - m[:, None]) / (k - 1).sqrt()[:, None, None]
            y = x @ half
            gram = y @ y.mT
            trace1.append((x * x).sum((1, 2)))
            eigenvalues.append(torch.linalg.eigvalsh((gram + gram.mT) / 2))
        trace1, eigenvalues = torch.cat(trace1), torch.cat(eigenvalues)
    else:
        i, j = torch.triu_indices(dim, dim)            # row by row, as the products below are laid out
        upper = weights @ torch.cat([r[:, k:] * r[:, k:k + 1] for k in range(dim)], 1)   # one product for all
        second = torch.empty(len(weights), dim, dim, dtype=torch.double)
        second[:, i, j] = upper
        second[:, j, i] = upper
        sigma1 = (second - size[:, None, None] * mu[:, :, None] * mu[:, None, :]) / (size - 1)[:, None, None]
        trace1 = sigma1.diagonal(dim1=1, dim2=2).sum(-1)
        inner = half @ sigma1 @ half
        eigenvalues = torch.linalg.eigvalsh((inner + inner.mT) / 2)
    tr_sqrt = eigenvalues.clamp(min=0).sqrt().sum(-1)
    diff = mu + centre - mu2.double()
    distances = (diff * diff).sum(-1) + trace1 + torch.trace(sigma2.double()) - 2 * tr_sqrt
    return float(distances[0]) if counts is None else distances.numpy()


def fd(classifier, images_a: torch.Tensor, images_b: torch.Tensor | tuple) -> float:
    """FD-FMNIST between two image sets; ``images_b`` may be precomputed ``(μ, Σ)``."""
    stats_b = images_b if isinstance(images_b, tuple) else gaussian_stats(features(classifier, images_b))
    return frechet_distance(*gaussian_stats(features(classifier, images_a)), *stats_b)


@torch.no_grad()
def predicted_classes(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The class the classifier gives each of ``images`` (uint8 [0, 255] or floats in [−1, 1])."""
    check_images(images)
    classifier.eval()
    return torch.cat([classifier(as_model_input(images[i:i + 1000])).argmax(1) for i in range(0, len(images), 1000)])


def class_histogram(classifier: torch.nn.Module, images: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """Share of ``images`` (uint8 [0, 255] or floats in [−1, 1]) that the classifier puts in each class."""
    return torch.bincount(predicted_classes(classifier, images), minlength=n_classes).double() / len(images)


def mean_pairwise_distance(feats: torch.Tensor, groups: torch.Tensor) -> float:
    """Mean Euclidean distance between the feature vectors of distinct members of each group,
    averaged over the groups that have at least two members (there must be one). With a
    classifier's features grouped by the class the images were *asked* to be, this is chapter 03's
    within-class diversity, which guidance trades for fidelity (Dhariwal & Nichol 2021, section 4.2)."""
    per_group = []
    for group in groups.unique():
        f = feats[groups == group]
        if len(f) > 1:
            d = torch.cdist(f, f)
            per_group.append(d.sum() / (len(f) * (len(f) - 1)))
    if not per_group:
        raise ValueError("no group has two or more members, so there are no distances to average; pass "
                         "several images per label.")
    return float(torch.stack(per_group).mean())


def kid(feats_a: torch.Tensor, feats_b: torch.Tensor, subsets: int = 10, subset_size: int = 1000,
        seed: int = 0) -> dict:
    """Kernel distance of Bińkowski et al. (2018, section 3, the "KID" behind FID's critics): the
    unbiased estimate of MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged
    over ``subsets`` random subsets of ``subset_size`` rows of each set (fewer if a set is
    smaller). Unlike FD it is unbiased, so sets of different sizes compare fairly, and the spread
    over subsets says how sure it is. Returns {"value", "std", "subsets", "subset_size"}."""
    m = min(subset_size, len(feats_a), len(feats_b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature rows in each set, got {len(feats_a)} and {len(feats_b)}.")
    g = torch.Generator().manual_seed(seed)
    d = feats_a.shape[1]
    estimates = []
    for _ in range(subsets):
        x = feats_a[torch.randperm(len(feats_a), generator=g)[:m]].double()
        y = feats_b[torch.randperm(len(feats_b), generator=g)[:m]].double()
        k_xx, k_yy, k_xy = ((u @ v.T / d + 1) ** 3 for u, v in ((x, x), (y, y), (x, y)))
        off = m * (m - 1)
        estimates.append((k_xx.sum() - k_xx.diagonal().sum()) / off + (k_yy.sum() - k_yy.diagonal().sum()) / off
                         - 2 * k_xy.mean())
    values = torch.stack(estimates)
    return {"value": float(values.mean()), "std": float(values.std()) if subsets > 1 else 0.0,
            "subsets": subsets, "subset_size": m}


class FashionFD:
    """FD-FMNIST against the 10,000 Fashion-MNIST test images, with its two baselines."""

    def __init__(self, classifier: torch.nn.Module, test_images_uint8: torch.Tensor):
        self.classifier = classifier
        self.reference_features = kept_features(classifier, test_images_uint8)
        self.reference = gaussian_stats(self.reference_features)
        self.reference_half = sqrtm_psd(self.reference[1])

    def report(self, images: torch.Tensor, train_images_uint8: torch.Tensor, seed: int = 0) -> dict:
        """The course's FD-FMNIST protocol for one set of generated images: FD with its 95 %
        bootstrap interval over the images (the test set's Gaussian held fixed), N, the real-vs-real
        floor at the same N (training images against the test set), and KID with its spread."""
        feats = features(self.classifier, images)
        n = len(feats)
        fd_ = stats.interval(feats.numpy(), self.of_features, seed=seed)
        kid_ = kid(feats, self.reference_features, seed=seed)
        return {"fd": round(fd_["value"], 3), "fd_ci_low": round(fd_["ci_low"], 3),
                "fd_ci_high": round(fd_["ci_high"], 3), "fd_n": n,
                "fd_floor_same_n": round(self.real_vs_real(train_images_uint8, n, seed), 3),
                "kid": round(kid_["value"], 5), "kid_std": round(kid_["std"], 5)}

    def __call__(self, images: torch.Tensor) -> float:
        return fd(self.classifier, images, self.reference)

    @stats.counted
    def of_features(self, rows, counts=None):
        """FD of the judge's features ``rows`` (one per image) against the test set: the statistic a
        bootstrap recomputes in every resample (``counts``: see :func:`frechet_distance_of_rows`)."""
        return frechet_distance_of_rows(rows, *self.reference, self.reference_half, counts)

    def real_vs_real(self, train_images_uint8: torch.Tensor, n: int, seed: int = 0) -> float:
        """FD of ``n`` real training images: the best a generator of ``n`` samples can hope for."""
        idx = torch.randperm(len(train_images_uint8), generator=torch.Generator().manual_seed(seed))[:n]
        return self(train_images_uint8[idx])

    def noise(self, n: int, seed: int = 0) -> float:
        """FD of ``n`` images of Gaussian noise clipped to [−1, 1]: what no learning gives."""
        return self(torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1))


def _check_retrieval(similarity: torch.Tensor, relevant: torch.Tensor, k: int | None = None) -> None:
    if similarity.shape != relevant.shape or similarity.dim() != 2:
        raise ValueError(f"similarity {tuple(similarity.shape)} and relevant {tuple(relevant.shape)} must be "
                         "matrices of the same shape (queries × candidates).")
    if k is not None and not 1 <= k <= similarity.shape[1]:
        raise ValueError(f"k={k} is out of range; use 1 to {similarity.shape[1]} (the number of candidates).")


def _queries_with_relevant(relevant: torch.Tensor) -> torch.Tensor:
    """The rows that have a relevant candidate; none at all is an error (the mean would be NaN)."""
    has_any = relevant.sum(1) > 0
    if not has_any.any():
        raise ValueError("no query has a relevant candidate, so the measure is undefined; check the "
                         "relevance matrix (built from the right lists? transposed?).")
    return has_any


def hits_at_k(similarity: torch.Tensor, relevant: torch.Tensor, k: int) -> torch.Tensor:
    """For each query (a row of ``similarity``, scores against every candidate), True when a
    relevant candidate is among its ``k`` highest scores. ``relevant`` is a bool matrix of the same
    shape. One value per query, so that an interval can be bootstrapped over the queries."""
    _check_retrieval(similarity, relevant, k)
    top = similarity.topk(k, dim=1).indices
    return relevant.gather(1, top).any(1)


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Retrieval recall@k: the share of queries with at least one relevant candidate among their
    ``k`` highest scores (:func:`hits_at_k`); with one relevant candidate per query this is R@k of
    Radford et al. (2021, Table 13)."""
    return float(hits_at_k(similarity, relevant, k).double().mean())


def precision_at_k(similarity: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Retrieval precision@k: the mean share of relevant candidates among each query's ``k``
    highest scores (AudioCLIP's P@1 for k = 1: is the top answer right?)."""
    _check_retrieval(similarity, relevant, k)
    top = similarity.topk(k, dim=1).indices
    return float(relevant.gather(1, top).double().mean())


def recall_of_relevant_at_k(similarity: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Information-retrieval recall@k: the mean share of each query's relevant candidates found
    among its ``k`` highest scores, over the queries that have any (AudioCLIP's R@1, which falls
    below P@1 when a query has several right answers). Compare :func:`recall_at_k`, CLIP's hit rate.
    If no query has a relevant candidate, it is undefined: an error."""
    _check_retrieval(similarity, relevant, k)
    has_any = _queries_with_relevant(relevant)
    top = similarity.topk(k, dim=1).indices
    count = relevant.sum(1)
    return float((relevant.gather(1, top).sum(1)[has_any].double() / count[has_any]).mean())


def mean_average_precision(similarity: torch.Tensor, relevant: torch.Tensor) -> float:
    """mAP: for each query, the mean of precision@r over the ranks r of its relevant candidates
    (candidates sorted by falling score), averaged over the queries that have any. If no query has
    a relevant candidate, mAP is undefined: an error."""
    _check_retrieval(similarity, relevant)
    has_any = _queries_with_relevant(relevant)
    order = similarity.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order).double()                        # (Q, N) relevance in rank order
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64)
    precision = hits.cumsum(1) / ranks
    count = hits.sum(1)
    return float(((precision * hits).sum(1)[has_any] / count[has_any]).mean())

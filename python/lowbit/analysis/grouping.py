"""Class grouping (paper 004, Section IV.a, Table 2): find the classes a quantized model
confuses by hierarchical clustering of its confusion matrix, merge them into one class
("cat" + "dog" -> "small pets"), and compare accuracy before and after.

Similarity of classes i and j: the share of their test samples confused with each other,
S_ij = (C_ij + C_ji) / (n_i + n_j), with C[true, predicted] and n_i the samples of
class i. Clustering is average linkage on S (the similarity of two groups is the mean
S over their class pairs); groups merge, most similar first, while their similarity is
at least `threshold`. Grouped accuracy counts a prediction as right when it falls in
the true class's group.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from torch import nn

from ._plot import PathLike, pyplot, save_png


@dataclass(frozen=True)
class Merge:
    """One step of the clustering: groups `left` and `right` (class lists) joined at
    `similarity`; the result is cluster number `num_classes + step`."""
    left: List[int]
    right: List[int]
    similarity: float


@dataclass(frozen=True)
class GroupingResult:
    groups: List[List[int]]        # every class, in groups (singletons included)
    names: List[str]               # group names: the class names joined with '/'
    accuracy_before: float         # per class, %
    accuracy_after: float          # with the groups merged, %


@torch.no_grad()
def confusion_matrix(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     num_classes: Optional[int] = None, batch_size: int = 1000) -> torch.Tensor:
    """[C, C] int64 counts, rows = true class, columns = predicted class (eval mode)."""
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as inputs (> 0); got {len(x)} inputs, {len(y)} labels")
    was_training = model.training
    model.eval()
    pred = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(y), batch_size)])
    model.train(was_training)
    C = int(num_classes or max(int(y.max()), int(pred.max())) + 1)
    return torch.bincount(y.to(torch.int64) * C + pred.cpu(), minlength=C * C).reshape(C, C)


def _check_cm(cm) -> torch.Tensor:
    cm = torch.as_tensor(cm)
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 1:
        raise ValueError(f"confusion matrix must be square [C, C], got shape {tuple(cm.shape)}")
    if cm.is_floating_point() and not bool(torch.isfinite(cm).all()):
        raise ValueError("confusion matrix must be finite")
    if bool((cm < 0).any()):
        raise ValueError("confusion matrix counts must be >= 0")
    return cm.to(torch.float64)


def confusion_similarity(cm) -> torch.Tensor:
    """S_ij = (C_ij + C_ji) / (n_i + n_j) off the diagonal, 0 on it."""
    cm = _check_cm(cm)
    n = cm.sum(1)
    denom = n[:, None] + n[None, :]
    s = (cm + cm.T) / torch.where(denom > 0, denom, torch.ones_like(denom))
    s.fill_diagonal_(0)
    return s


def linkage(cm, max_group_size: Optional[int] = None) -> List[Merge]:
    """Every merge of average-linkage clustering on the confusion similarity, most
    similar first (C - 1 merges). Ties go to the pair with the smallest class indices.
    max_group_size: only merges that give groups of at most that many classes (the
    clustering stops when no pair fits)."""
    s = confusion_similarity(cm)
    if max_group_size is not None and (isinstance(max_group_size, bool) or not isinstance(max_group_size, int)
                                       or max_group_size < 1):
        raise ValueError(f"max_group_size must be a positive integer, got {max_group_size!r}")
    limit = max_group_size or s.shape[0]
    clusters = [[i] for i in range(s.shape[0])]
    merges = []
    while len(clusters) > 1:
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                if len(clusters[a]) + len(clusters[b]) > limit:
                    continue
                sim = float(s[clusters[a]][:, clusters[b]].mean())
                key = (-sim, min(clusters[a] + clusters[b]), sorted(clusters[a] + clusters[b]))
                if best is None or key < best[0]:
                    best = (key, a, b, sim)
        if best is None:
            break
        _, a, b, sim = best
        merges.append(Merge(sorted(clusters[a]), sorted(clusters[b]), sim))
        joined = sorted(clusters[a] + clusters[b])
        clusters = [c for k, c in enumerate(clusters) if k not in (a, b)] + [joined]
    return merges


def group_classes(cm, threshold: float = 0.05, max_groups: Optional[int] = None,
                  max_group_size: Optional[int] = None) -> List[List[int]]:
    """Groups of classes: the merges of `linkage(cm, max_group_size)` whose similarity is
    >= threshold, or, with max_groups, as many merges as leave that many groups
    (threshold ignored). max_group_size keeps a badly broken model from grouping
    everything into one class."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    cm = _check_cm(cm)
    if max_groups is not None and (not isinstance(max_groups, int) or not 1 <= max_groups):
        raise ValueError(f"max_groups must be a positive integer, got {max_groups!r}")
    groups = [[i] for i in range(cm.shape[0])]
    for m in linkage(cm, max_group_size):
        if (len(groups) <= max_groups) if max_groups is not None else m.similarity < threshold:
            break
        groups = [g for g in groups if g != m.left and g != m.right] + [sorted(m.left + m.right)]
    return sorted(groups)


def grouped_accuracy(cm, groups: Optional[Sequence[Sequence[int]]] = None) -> float:
    """Accuracy in % when a prediction anywhere in the true class's group counts as right
    (groups=None: plain per-class accuracy)."""
    cm = _check_cm(cm)
    C = cm.shape[0]
    label = list(range(C))
    for g in groups or []:
        for c in g:
            if not 0 <= c < C:
                raise ValueError(f"groups name class {c}, outside [0, {C - 1}]")
            label[c] = min(g)
    same = torch.tensor([[label[i] == label[j] for j in range(C)] for i in range(C)])
    total = float(cm.sum())
    if total == 0:
        raise ValueError("confusion matrix is empty (no samples)")
    return 100.0 * float(cm[same].sum()) / total


def class_grouping(cm, class_names: Optional[Sequence[str]] = None, threshold: float = 0.05,
                   groups: Optional[Sequence[Sequence[int]]] = None, max_groups: Optional[int] = None,
                   max_group_size: Optional[int] = None, png: Optional[PathLike] = None,
                   title: str = "") -> GroupingResult:
    """Group the classes confused in `cm` (or use the given `groups`) and report accuracy
    before and after grouping. png: the confusion matrix and the clustering tree."""
    cm = _check_cm(cm)
    C = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    if len(names) != C:
        raise ValueError(f"class_names has {len(names)} names for {C} classes")
    found = ([sorted(g) for g in groups] if groups is not None
             else group_classes(cm, threshold, max_groups, max_group_size))
    result = GroupingResult(found, ["/".join(names[c] for c in g) for g in found],
                            grouped_accuracy(cm), grouped_accuracy(cm, found))
    if png is not None:
        plot_grouping(cm, names, linkage(cm), png, title)
    return result


def _dendrogram(ax, merges: List[Merge], names: Sequence[str]) -> None:
    """A dendrogram drawn by hand (no scipy): leaves ordered so that merged groups sit
    together, height = 1 - similarity, leaves just below the lowest merge (so that the
    usual small similarities do not squash the tree against the top)."""
    def unfold(members):  # leaf order: each merge's two sides next to each other
        for m in reversed(merges):
            if sorted(m.left + m.right) == sorted(members):
                return unfold(m.left) + unfold(m.right)
        return list(members)
    order = unfold(list(range(len(names))))
    pos = {(c,): float(i) for i, c in enumerate(order)}
    heights = [1.0 - m.similarity for m in merges] or [0.0]
    leaf = min(heights) - 0.1 * (max(heights) - min(heights) or 1.0)
    height = {(c,): leaf for c in order}
    for m in merges:
        left, right = tuple(sorted(m.left)), tuple(sorted(m.right))
        h = 1.0 - m.similarity
        for side in (left, right):
            ax.plot([pos[side], pos[side]], [height[side], h], color="C0", lw=1)
        ax.plot([pos[left], pos[right]], [h, h], color="C0", lw=1)
        key = tuple(sorted(m.left + m.right))
        pos[key], height[key] = (pos[left] + pos[right]) / 2, h
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([names[c] for c in order], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("1 - confusion similarity")


def plot_grouping(cm: torch.Tensor, names: Sequence[str], merges: List[Merge], png: PathLike,
                  title: str = "") -> None:
    plt = pyplot()
    fig, (cm_ax, tree_ax) = plt.subplots(1, 2, figsize=(11, 4.4))
    rate = cm / cm.sum(1, keepdim=True).clamp(min=1)
    im = cm_ax.imshow(rate.numpy(), cmap="Blues", vmin=0, vmax=1)
    cm_ax.set_xticks(range(len(names)))
    cm_ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    cm_ax.set_yticks(range(len(names)))
    cm_ax.set_yticklabels(names, fontsize=7)
    cm_ax.set(xlabel="predicted", ylabel="true", title="confusion (row-normalized)")
    fig.colorbar(im, ax=cm_ax, fraction=0.046)
    _dendrogram(tree_ax, merges, names)
    tree_ax.set_title("average-linkage clustering")
    if title:
        fig.suptitle(title, fontsize=10)
    save_png(fig, png)

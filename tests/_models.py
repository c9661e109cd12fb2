"""The small fixed-weight test models, in one place (import after ``pytest.importorskip("torch")``).

Each has fixed weights (a seeded generator) so that the hand-worked values and the peer comparisons in the
tests stay valid.
"""

from __future__ import annotations

import numpy as np
import torch

F = torch.nn.functional


class Tiny(torch.nn.Module):
    """Conv-BN-ReLU(inplace)-Dropout-Conv-ReLU-pool-linear, with fixed weights."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(inplace=True),
            torch.nn.Dropout(0.5), torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
        )
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 4)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 0.6 - 0.2)  # mostly positive: non-blank CAMs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class Net(torch.nn.Module):
    """A small CNN with nn.ReLU modules (not in place), as Captum's guided backprop requires."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(11)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(12, 16, 3, padding=1), torch.nn.ReLU(),
        )
        self.fc = torch.nn.Linear(16, 6)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=g) - 0.35) * 0.8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class Quadratic(torch.nn.Module):
    """features = identity; score_k = sum_c W[k, c] * sum_xy A_cxy^2 / 2, so dscore_k/dA_c = W[k, c] A_c."""

    def __init__(self, w: list[list[float]]) -> None:
        super().__init__()
        self.features = torch.nn.Identity()
        self.register_buffer("w", torch.tensor(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.features(x)
        return (self.w[None, :, :] * (a * a / 2).sum(dim=(2, 3))[:, None, :]).sum(dim=2)


class TwoLayer(torch.nn.Module):
    """y = W2 act(W1 x) with the activation called in one of several ways (``how``: a name below, or any
    module, used as the activation)."""

    def __init__(self, how: str | torch.nn.Module) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.l1 = torch.nn.Linear(12, 10)
        self.l2 = torch.nn.Linear(10, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
            self.l2.weight.abs_()
            self.l2.weight[:, 1::2] *= -1  # negative back-signals, which the guided rule must stop
        self.how = how if isinstance(how, str) else "module"
        self.act = how if isinstance(how, torch.nn.Module) else \
            {"module": torch.nn.ReLU(), "relu6": torch.nn.ReLU6(), "silu": torch.nn.SiLU(),
             "gelu": torch.nn.GELU()}.get(how, torch.nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x.flatten(1))
        if self.how == "functional":
            h = F.relu(h)
        elif self.how == "torch":
            h = torch.relu(h)
        elif self.how == "method":
            h = h.relu()
        elif self.how == "inplace":
            h = F.relu(h, inplace=True)
        else:
            h = self.act(h)
        return self.l2(h)


class Shared(torch.nn.Module):
    """One ReLU module used at two depths (like EfficientNet-Lite's shared ReLU6)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.c1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = torch.nn.Conv2d(4, 5, 3, padding=1)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(5, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) - 0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.c2(self.act(self.c1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class Step(torch.nn.Module):
    """f(x) = 10 tanh(40 (mean(x) - 0.1)): along the path from 0 to 1 the score changes sharply near
    alpha = 0.1 and is flat elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * torch.tanh(40 * (x.mean(dim=(1, 2, 3)) - 0.1))[:, None]


def tiny_vit(image_size: int = 12, patch_size: int = 4, num_classes: int = 4, seed: int = 0) -> torch.nn.Module:
    """A torchvision VisionTransformer (2 blocks, 2 heads, width 16) with fixed, seeded weights and a non-zero
    head (torchvision initialises the head to zero, which would make every class score constant)."""
    import torchvision

    torch.manual_seed(seed)
    vit = torchvision.models.VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=2,
                                               num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=num_classes)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        vit.heads.head.weight.copy_(torch.randn(vit.heads.head.weight.shape, generator=g))
    return vit


#: the square colours of :func:`two_square_scene`
COLOURS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.9, 0.1), "blue": (0.1, 0.1, 0.9)}


def two_square_scene(n: int, seed: int, size: int = 32, side: int = 8):
    """Grey images with a red and a green square at random, non-overlapping places; their (row, col) corners."""
    g = np.random.default_rng(seed)
    x = torch.full((n, 3, size, size), 0.5)
    where = []
    for i in range(n):
        while True:
            a, b = g.integers(0, size - side, 2), g.integers(0, size - side, 2)
            if abs(int(a[0]) - int(b[0])) >= side or abs(int(a[1]) - int(b[1])) >= side:
                break
        for (r, c), colour in ((a, "red"), (b, "green")):
            x[i, :, r:r + side, c:c + side] = torch.tensor(COLOURS[colour])[:, None, None]
        where.append({"red": (int(a[0]), int(a[1])), "green": (int(b[0]), int(b[1]))})
    return x, where


def peaks_inside(maps: torch.Tensor, where: list[dict], colour: str, side: int = 8) -> list[bool]:
    """Per image: whether the map's maximum lies inside the square of ``colour``."""
    hits = []
    for m, w in zip(maps, where):
        r, c = divmod(int(m.argmax()), m.shape[1])
        r0, c0 = w[colour]
        hits.append(r0 <= r < r0 + side and c0 <= c < c0 + side)
    return hits


def bag_of_words(texts: list[str]) -> torch.Tensor:
    """A test-built text encoder: the sum of fixed random word vectors (16-d), normalised."""
    g = torch.Generator().manual_seed(7)
    vocab = {w: torch.randn(16, generator=g) for w in ("a", "square", "red", "green", "blue", "photo", "of")}
    out = []
    for t in texts:
        v = sum((vocab[w] for w in t.lower().split() if w in vocab), torch.zeros(16))
        out.append(v / v.norm().clamp(min=1e-12))
    return torch.stack(out)

"""A small MLP valence head on mood-v3's standardised design, trained several at once (torch, CPU).

Used by `train_mood_model.py` (mood-v4's valence head) and `mood_mlp_trials.py` (its grouped
CV). Each member: design (standardised, the prior's columns scaled by the prior gain) -> input
dropout -> Linear(d, hidden) -> GELU -> Linear(hidden, 2), trained on both axes (the second
output is a helper task; the model uses valence) by weighted squared error with AdamW. Members
differ by their initialisation, dropout masks and settings; all members of one call see the
same training rows and the same minibatch order, so they train as one batched matrix product
(small per-step ops would otherwise cost more than the arithmetic on one core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MLPSetting:
    """One member's training setting. `emotion6_weight` is per Emotion6 photo (centre crop); each
    OASIS view (centre, mirror) weighs 1."""

    hidden: int = 128
    dropout: float = 0.5
    emotion6_weight: float = 0.1
    epochs: int = 20
    weight_decay: float = 0.01
    lr: float = 1e-3
    batch: int = 64


@dataclass
class MLPs:
    """K trained members: w1 (K, d, h), b1 (K, h), w2 (K, h, 2), b2 (K, 2), float32 numpy."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def predict(self, z: np.ndarray) -> np.ndarray:
        """(K, n, 2) predictions of standardised rows z (n, d)."""
        with torch.no_grad():
            x = torch.from_numpy(z.astype(np.float32))
            pre = torch.einsum("nd,kdh->knh", x, torch.from_numpy(self.w1))
            h = torch.nn.functional.gelu(pre + torch.from_numpy(self.b1)[:, None])
            return (torch.bmm(h, torch.from_numpy(self.w2)) + torch.from_numpy(self.b2)[:, None]).numpy()

    def select(self, idx) -> MLPs:
        idx = np.asarray(idx)
        return MLPs(self.w1[idx], self.b1[idx], self.w2[idx], self.b2[idx])


def train_mlps(z_oa: np.ndarray, y_oa: np.ndarray, z_e6: np.ndarray, y_e6: np.ndarray,
               settings: list[MLPSetting], seed: int) -> list[MLPs]:
    """Train one member per setting on OASIS rows z_oa (n, views, d) and Emotion6 rows z_e6 (m, d).

    Settings must share hidden, lr and batch; they may differ in dropout, Emotion6 weight, weight
    decay and epochs. Returns, per setting, its member as it stood after its own epoch count
    (a snapshot of the same run: the learning rate is constant, so a 20-epoch member is the
    40-epoch run as it stood at epoch 20).
    """
    s0 = settings[0]
    assert all((s.hidden, s.lr, s.batch) == (s0.hidden, s0.lr, s0.batch) for s in settings)
    gen = torch.Generator().manual_seed(seed)
    views = z_oa.shape[1]
    x = torch.from_numpy(np.r_[z_oa.reshape(-1, z_oa.shape[-1]), z_e6].astype(np.float32))
    y = torch.from_numpy(np.r_[np.repeat(y_oa, views, 0), y_e6].astype(np.float32))
    k, (n, d), h = len(settings), x.shape, s0.hidden
    n_oa = len(y_oa) * views
    weight = torch.ones(k, n)
    for i, s in enumerate(settings):
        weight[i, n_oa:] = s.emotion6_weight
    keep = torch.tensor([1 - s.dropout for s in settings])[:, None, None]
    bound1, bound2 = 1 / d ** 0.5, 1 / h ** 0.5  # nn.Linear's default initialisation
    w1 = ((torch.rand(k, d, h, generator=gen) * 2 - 1) * bound1).requires_grad_()
    b1 = ((torch.rand(k, 1, h, generator=gen) * 2 - 1) * bound1).requires_grad_()
    w2 = ((torch.rand(k, h, 2, generator=gen) * 2 - 1) * bound2).requires_grad_()
    b2 = ((torch.rand(k, 1, 2, generator=gen) * 2 - 1) * bound2).requires_grad_()
    # Weight decay per member (AdamW's decoupled form, applied by hand so members may differ).
    decay = torch.tensor([s.weight_decay for s in settings])
    opt = torch.optim.Adam([w1, b1, w2, b2], lr=s0.lr)
    snapshots: dict[int, MLPs] = {}
    wanted = sorted({s.epochs for s in settings})
    for epoch in range(1, wanted[-1] + 1):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, s0.batch):
            idx = order[start:start + s0.batch]
            mask = (torch.rand(k, len(idx), d, generator=gen) < keep) / keep
            hid = torch.nn.functional.gelu(torch.bmm(x[idx].expand(k, -1, -1) * mask, w1) + b1)
            err = ((torch.bmm(hid, w2) + b2 - y[idx]) ** 2).sum(-1)  # (k, batch)
            wb = weight[:, idx]
            loss = ((err * wb).sum(1) / wb.sum(1)).sum()
            opt.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in (w1, b1, w2, b2):
                    p.mul_(1 - s0.lr * decay.view(-1, *([1] * (p.dim() - 1))))
            opt.step()
        if epoch in wanted:
            snapshots[epoch] = MLPs(w1.detach().numpy().copy(), b1.detach()[:, 0].numpy().copy(),
                                    w2.detach().numpy().copy(), b2.detach()[:, 0].numpy().copy())
    return [snapshots[s.epochs].select([i]) for i, s in enumerate(settings)]


def stack(members: list[MLPs]) -> MLPs:
    return MLPs(*(np.concatenate([getattr(m, f) for m in members]) for f in ("w1", "b1", "w2", "b2")))

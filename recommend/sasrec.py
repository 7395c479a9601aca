"""A small SASRec (Kang & McAuley 2018) next-item model in torch, for CPU.

Item + position embeddings, `blocks` causal self-attention blocks (pre-norm
`nn.TransformerEncoderLayer`), the last position's state dotted with the item
embeddings (tied) as the score. Trained as in the paper: at every position the
next item against one uniformly sampled negative, binary cross-entropy, Adam.
Training stops after `epochs` or when `time_budget_s` is spent, whichever
comes first (the evaluation reports the fit seconds).

The sequence is the listener's fit-frame rows in order: purchase order for
music; for books and podcasts the source has no order, so the model trains on
the file's arbitrary order (stated in the report), and what it can learn is
co-occurrence, not sequence. Items never seen in the fit frame get the lowest
score (no embedding was trained for them).
"""

from __future__ import annotations

import time

import numpy as np

from recommend.baselines import Recommender


class SASRec(Recommender):
    name = "sasrec"

    def __init__(self, seed: int = 0, dim: int = 64, blocks: int = 2, heads: int = 1, max_len: int = 50,
                 dropout: float = 0.2, lr: float = 1e-3, batch_size: int = 128, epochs: int = 200,
                 time_budget_s: float = 90.0, progress: bool = False):
        super().__init__(seed)
        self.dim, self.blocks, self.heads, self.max_len = dim, blocks, heads, max_len
        self.dropout, self.lr, self.batch_size, self.epochs = dropout, lr, batch_size, epochs
        self.time_budget_s, self.progress = time_budget_s, progress
        self.epochs_run = 0

    def _net(self, n_tokens: int):
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(s):
                super().__init__()
                # sparse gradients: one step touches a few thousand of up to 250k item rows
                s.item = nn.Embedding(n_tokens, self.dim, padding_idx=0, sparse=True)
                nn.init.normal_(s.item.weight, std=self.dim ** -0.5)  # unit-norm rows: logits start near 0
                with torch.no_grad():
                    s.item.weight[0].zero_()
                s.pos = nn.Embedding(self.max_len, self.dim)
                s.drop = nn.Dropout(self.dropout)
                s.layers = nn.ModuleList(nn.TransformerEncoderLayer(
                    self.dim, self.heads, dim_feedforward=self.dim, dropout=self.dropout,
                    batch_first=True, norm_first=True) for _ in range(self.blocks))
                s.norm = nn.LayerNorm(self.dim)
                causal = torch.triu(torch.ones(self.max_len, self.max_len, dtype=torch.bool), diagonal=1)
                s.register_buffer("causal", causal, persistent=False)

            def forward(s, seq):  # seq: (B, L) token ids, 0 = padding (left)
                pad = seq == 0
                h = s.item(seq) * (self.dim ** 0.5) + s.pos.weight[None, : seq.shape[1]]
                h = s.drop(h) * (~pad)[..., None]
                for layer in s.layers:
                    h = layer(h, src_mask=s.causal[: seq.shape[1], : seq.shape[1]])
                    h = h * (~pad)[..., None]
                return s.norm(h)

        return Net()

    def _windows(self) -> np.ndarray:
        """(n, max_len + 1) left-padded token windows: the last max_len + 1 items of each sequence."""
        rows = []
        for seq in self.sequences.values():
            toks = [self.token[i] for i in seq][-(self.max_len + 1):]
            if len(toks) >= 2:
                rows.append([0] * (self.max_len + 1 - len(toks)) + toks)
        return np.asarray(rows, dtype=np.int64).reshape(-1, self.max_len + 1)

    def fit(self, train, items):
        import torch

        self._prepare(train, items)
        torch.manual_seed(self.seed)
        torch.set_num_threads(1)
        used = sorted({i for seq in self.sequences.values() for i in seq})
        self.token = {i: t + 1 for t, i in enumerate(used)}      # universe index -> token (0 = padding)
        self.token_items = np.asarray(used, dtype=np.int64)      # token - 1 -> universe index
        self.net = self._net(len(used) + 1)
        dense = [p for n, p in self.net.named_parameters() if not n.startswith("item.")]
        opts = [torch.optim.SparseAdam(list(self.net.item.parameters()), lr=self.lr, betas=(0.9, 0.98)),
                torch.optim.Adam(dense, lr=self.lr, betas=(0.9, 0.98))]
        windows = torch.from_numpy(self._windows())
        rng = np.random.default_rng(self.seed)
        start = time.monotonic()
        self.net.train()
        for epoch in range(self.epochs):
            order = torch.from_numpy(rng.permutation(len(windows)))
            total = 0.0
            for b in range(0, len(order), self.batch_size):
                w = windows[order[b:b + self.batch_size]]
                inp, pos = w[:, :-1], w[:, 1:]
                neg = torch.from_numpy(rng.integers(1, len(used) + 1, size=tuple(pos.shape)))
                h = self.net(inp)
                pos_logit = (h * self.net.item(pos)).sum(-1)
                neg_logit = (h * self.net.item(neg)).sum(-1)
                mask = (pos != 0).float()
                loss = (torch.nn.functional.softplus(-pos_logit) + torch.nn.functional.softplus(neg_logit))
                loss = (loss * mask).sum() / mask.sum().clamp(min=1)
                for opt in opts:
                    opt.zero_grad()
                loss.backward()
                for opt in opts:
                    opt.step()
                total += loss.item()
            self.epochs_run = epoch + 1
            if self.progress:
                print(f"  sasrec epoch {epoch + 1}: loss {total / max(1, -(-len(order) // self.batch_size)):.4f}",
                      flush=True)
            if time.monotonic() - start > self.time_budget_s:
                break
        self.net.eval()
        return self

    def score(self, listener_ids):
        import torch

        seqs = []
        for lid in listener_ids:
            toks = [self.token[i] for i in self.seen(lid)][-self.max_len:]
            seqs.append([0] * (self.max_len - len(toks)) + toks)
        with torch.no_grad():
            h = self.net(torch.tensor(seqs, dtype=torch.int64))[:, -1]          # (B, d)
            logits = (h @ self.net.item.weight[1:].T).numpy()                   # (B, used)
        out = np.full((len(listener_ids), len(self.items)), -1e9, dtype=np.float32)
        out[:, self.token_items] = logits
        return out

"""What GCG needs from a ranker type: a differentiable loss over STS tokens, and exact losses.

One objective per ranker type (``attacks/sts/embedding_loss.py``, ``attacks/sts/causal_lm_loss.py``),
built from the white-box ranker, the product list, the target's index and the optimisation
requests. Each GCG step calls :meth:`STSObjective.step` once: the objective draws that step's
context (a shuffled catalog order, a batch of requests) from the attack's generator and returns a
:class:`Step` that evaluates the gradient at the current STS and the exact loss of candidates
under the same context.
"""

from __future__ import annotations

from typing import Protocol

import torch

#: Characters an STS token may not contain: they would be escaped in the JSON product line (so the
#: text would not re-tokenise to the same ids) or break the one-product-per-line layout.
FORBIDDEN_CHARS = frozenset('"\\\n\r\t')


class Step(Protocol):
    def gradient(self, sts: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(loss at ``sts`` [n], d loss / d one-hot [n, vocab]) under this step's context."""

    def losses(self, candidates: torch.Tensor) -> torch.Tensor:
        """Exact loss of each candidate ``[B, n]`` under this step's context (float32 ``[B]``)."""


class STSObjective(Protocol):
    vocab_size: int

    def allowed_tokens(self) -> torch.Tensor:
        """bool ``[vocab]``: printable-ASCII, non-special tokens without :data:`FORBIDDEN_CHARS`."""

    def initial(self, n_tokens: int, text: str) -> torch.Tensor:
        """``n_tokens`` ids that start the search (the paper: '*' repeated)."""

    def decode(self, sts: torch.Tensor) -> str:
        """The STS as the text appended to the product's last field."""

    def retokenizes(self, candidates: torch.Tensor) -> torch.Tensor:
        """bool ``[B]``: the candidate's text, placed in the product, tokenises back to the same ids."""

    def step(self, generator: torch.Generator) -> Step:
        """Draw this step's context and return its evaluator."""


def printable_ascii(piece: str) -> bool:
    """A decoded token is allowed when it is non-empty printable ASCII without forbidden characters."""
    return bool(piece) and piece.isascii() and piece.isprintable() and not (set(piece) & FORBIDDEN_CHARS)


def allowed_mask(tokenizer: object, vocab_size: int) -> torch.Tensor:
    """bool ``[vocab_size]`` over the tokenizer's ids: :func:`printable_ascii` and not special."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    n = min(vocab_size, len(tokenizer))  # type: ignore[arg-type]
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))  # type: ignore[attr-defined]
    for i in range(n):
        if i in special:
            continue
        text = tokenizer.convert_tokens_to_string([pieces[i]])  # type: ignore[attr-defined]
        mask[i] = printable_ascii(text.strip()) and "[unused" not in pieces[i]
    return mask

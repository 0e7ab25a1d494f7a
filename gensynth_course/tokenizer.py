"""A word-level tokenizer for the Shapes world's captions.

CLIP uses a byte-pair encoding of 49,152 tokens (Radford et al. 2021, section 2.4) because its
captions come from the open web. The Shapes grammar has about forty words, so one token per word
is exact and easy to read: ``encode`` turns captions into padded id sequences framed by
``<bos>`` / ``<eos>`` with a mask of real tokens, ``decode`` turns them back. A word outside the
vocabulary is an error that names it and suggests the nearest known words, rather than a silent
``<unk>`` that a model would learn nothing from.
"""

from __future__ import annotations

import difflib
import re

import torch

from .shapes import vocabulary

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)


class UnknownWordError(ValueError):
    """A caption uses a word the tokenizer does not know; ``.word`` is the word, ``.suggestions``
    the nearest known ones."""

    def __init__(self, word: str, text: str, suggestions: list[str]):
        self.word, self.text, self.suggestions = word, text, suggestions
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown word {word!r} in {text!r}.{hint} The Shapes vocabulary has "
                         f"{len(vocabulary())} words: tokenizer.words lists them all.")


class Tokenizer:
    """Word ids: 0 = ``<pad>``, 1 = ``<bos>``, 2 = ``<eos>``, then the grammar's words in order."""

    def __init__(self, words: list[str] | None = None, context_length: int = 16):
        self.words = list(words if words is not None else vocabulary())
        self.itos = list(SPECIALS) + self.words
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.context_length = context_length
        self.pad_id, self.bos_id, self.eos_id = (self.stoi[s] for s in SPECIALS)

    def __len__(self) -> int:
        return len(self.itos)

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-case words; punctuation is dropped."""
        return re.findall(r"[a-z]+", text.lower())

    def ids(self, text: str) -> list[int]:
        """``[<bos>, w_1, …, w_n, <eos>]`` for one caption (no padding)."""
        out = [self.bos_id]
        for word in self.split(text):
            if word not in self.stoi:
                raise UnknownWordError(word, text, difflib.get_close_matches(word, self.words, n=3, cutoff=0.6))
            out.append(self.stoi[word])
        if len(out) + 1 > self.context_length:
            raise ValueError(f"{text!r} has {len(out) - 1} words; at most {self.context_length - 2} fit.")
        return out + [self.eos_id]

    def encode(self, texts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, mask)``, both (N, context_length): ids padded with ``<pad>``, mask True on real
        tokens (``<bos>`` and ``<eos>`` included)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        ids = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            seq = self.ids(text)
            ids[row, :len(seq)] = torch.tensor(seq)
        return ids, ids != self.pad_id

    def decode(self, ids: torch.Tensor) -> list[str]:
        """The captions back from ids (N, L) or (L,): the words between ``<bos>`` and ``<eos>``."""
        rows = ids.view(-1, ids.shape[-1]).tolist()
        specials = {self.pad_id, self.bos_id, self.eos_id}
        out = []
        for row in rows:
            if self.eos_id in row:
                row = row[:row.index(self.eos_id)]
            out.append(" ".join(self.itos[i] for i in row if i not in specials))
        return out

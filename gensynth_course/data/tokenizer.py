"""A word-level tokenizer for the Shapes world's captions.

CLIP uses a byte-pair encoding of 49,152 tokens (Radford et al. 2021, section 2.4) because its
captions come from the open web. The Shapes grammar has about forty words, so one token per word
is exact and easy to read: ``encode`` turns captions into padded id sequences framed by
``<bos>`` / ``<eos>`` with a mask of real tokens, ``decode`` turns them back. A word outside the
vocabulary (a number, a word with an accent) is an error that names it and suggests the nearest
known words, rather than a silent ``<unk>`` that a model would learn nothing from; so is a caption
with no words at all, unless the empty caption is asked for with ``allow_empty=True``.
"""

from __future__ import annotations

import difflib

import torch

from gensynth_course.data.shapes import CaptionError, caption_words, vocabulary

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


def caption_list(captions) -> list[str]:
    """``captions`` as a list, refusing one plain string: a function that takes a list of captions
    would otherwise read each of its characters as a caption."""
    if isinstance(captions, str):
        raise ValueError(f"expected a list of captions but got one string, {captions!r}; pass a list of "
                         f"captions, e.g. [{captions!r}].")
    return list(captions)


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
        """Lower-case words (runs of letters and digits, accents kept); punctuation is dropped."""
        return caption_words(text)

    def ids(self, text: str, allow_empty: bool = False) -> list[int]:
        """``[<bos>, w_1, …, w_n, <eos>]`` for one caption (no padding). A caption without words is
        refused unless ``allow_empty`` (the empty caption ``[<bos>, <eos>]``, "no condition")."""
        if not isinstance(text, str):
            raise ValueError(f"a caption must be a string, not {type(text).__name__} {text!r}.")
        out = [self.bos_id]
        for word in self.split(text):
            if word not in self.stoi:
                raise UnknownWordError(word, text, difflib.get_close_matches(word, self.words, n=3, cutoff=0.6))
            out.append(self.stoi[word])
        if len(out) == 1 and not allow_empty:
            raise CaptionError(f"the caption {text!r} has no words; describe a scene, e.g. 'a big red circle on "
                               "the left' (for the empty caption of classifier-free guidance, pass allow_empty=True).")
        if len(out) + 1 > self.context_length:
            raise ValueError(f"{text!r} has {len(out) - 1} words; at most {self.context_length - 2} fit.")
        return out + [self.eos_id]

    def encode(self, texts: str | list[str], allow_empty: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, mask)``, both (N, context_length): ids padded with ``<pad>``, mask True on real
        tokens (``<bos>`` and ``<eos>`` included). ``texts`` is one caption or a list of them; an
        empty caption is refused unless ``allow_empty``."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        ids = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            seq = self.ids(text, allow_empty)
            ids[row, :len(seq)] = torch.tensor(seq)
        return ids, ids != self.pad_id

    def decode(self, ids: torch.Tensor) -> list[str]:
        """The captions back from ids (N, L) or (L,): the words between ``<bos>`` and ``<eos>``."""
        rows = ids.view(-1, ids.shape[-1]).tolist()
        unknown = [i for row in rows for i in row if not 0 <= i < len(self.itos)]
        if unknown:
            raise ValueError(f"token id {unknown[0]} is not in the vocabulary; ids run from 0 to "
                             f"{len(self.itos) - 1} (were these ids made by another tokenizer?).")
        specials = {self.pad_id, self.bos_id, self.eos_id}
        out = []
        for row in rows:
            if self.eos_id in row:
                row = row[:row.index(self.eos_id)]
            out.append(" ".join(self.itos[i] for i in row if i not in specials))
        return out

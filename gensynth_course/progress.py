"""Progress bars: tqdm's notebook widget for a person in Jupyter, plain text when headless.

A widget bar saved in a notebook that nobody watched renders as nothing in the book; plain text
bars render as text everywhere.
"""

from __future__ import annotations

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

from .notebook import headless


def progress_bar(*args, **kwargs):
    """``tqdm(...)`` with the right front end for where the code runs."""
    if headless():
        kwargs.setdefault("mininterval", 10.0)  # a few lines in a stored notebook, not thousands
        return _text_tqdm(*args, **kwargs)
    return _auto_tqdm(*args, **kwargs)

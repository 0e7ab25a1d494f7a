"""Progress bars: tqdm's notebook widget for a person in Jupyter, plain text when headless.

A widget bar saved in a notebook that nobody watched renders as nothing in the book; plain text
bars render as text everywhere. While a bar is open its process counts as computing, so that the
course's processes share the CPU cores (:mod:`gensynth_course.threads`).
"""

from __future__ import annotations

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

from gensynth_course import threads
from gensynth_course.notebook import headless


class _SharingCores:
    """A tqdm bar that marks its process busy from opening to closing (see :mod:`.threads`)."""

    def __init__(self, *args, **kwargs):
        threads.begin()
        self._sharing = True
        super().__init__(*args, **kwargs)

    def update(self, n=1):
        threads.refresh()
        return super().update(n)

    def __iter__(self):
        for item in super().__iter__():
            threads.refresh()
            yield item

    def close(self):
        if getattr(self, "_sharing", False):
            self._sharing = False
            threads.end()
        super().close()


class _TextBar(_SharingCores, _text_tqdm):
    pass


class _NotebookBar(_SharingCores, _auto_tqdm):
    pass


def progress_bar(*args, **kwargs):
    """``tqdm(...)`` with the right front end for where the code runs."""
    if headless():
        kwargs.setdefault("mininterval", 10.0)  # a few lines in a stored notebook, not thousands
        return _TextBar(*args, **kwargs)
    return _NotebookBar(*args, **kwargs)

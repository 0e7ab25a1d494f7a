"""The course's error for a setting a person got wrong: an environment variable such as
``GENSYNTH_CACHE``, ``GENSYNTH_DEVICE`` or ``GENSYNTH_PRECISION`` that cannot be used. Its message is
one line (what is wrong, and what to do), and the command line prints that line alone."""


class SettingError(ValueError):
    """A ``GENSYNTH_*`` setting that cannot be used; the message says what to do about it."""

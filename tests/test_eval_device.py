"""Every chapter's measured path honours the course's one device: with the device set to a sentinel,
``eval NN`` at the quick budget puts every model it loads or trains on the sentinel, and every
sampler call runs a model that lives there.

The evals run once per session (the ``quick_evals`` fixture of ``conftest.py``) in the course's
own cache, so the quick models they train are the ones nbval and JupyterLab load next; the
chapters' own tests read the same results."""

from __future__ import annotations

import pytest

from gensynth_course.experiments import MODULES


@pytest.mark.parametrize("number", sorted(MODULES))
def test_eval_puts_every_model_on_the_chosen_device(number, quick_evals):
    _, placement = quick_evals.get(number)
    assert placement["loaded"], f"eval {number} loaded no model"
    assert not placement["strays"], f"eval {number}: these models were not put on the chosen device: {placement['strays']}"
    assert not placement["off_device_samples"], f"eval {number}: a sampler ran a model off the device"

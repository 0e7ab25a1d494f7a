"""Helpers for the chapter notebooks: show the package's real source, sliders that degrade to a
static figure when no one is looking, a box that answers a prompt once per click, and a place for
the figures a chapter writes."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Callable, Sequence


def headless() -> bool:
    """True when a notebook runs without a person in front of it (tests, ``run``, the book build).

    Set ``GENSYNTH_HEADLESS=1`` to force it; ``make test``, ``python -m gensynth_course run`` and
    the book build do.
    """
    return os.environ.get("GENSYNTH_HEADLESS", "") not in ("", "0")


def show_source(obj):
    """Display the source of a package function, class or method, syntax-highlighted: the code that
    ran. A chapter shows a piece by its name; what it teaches has a function or method of its own."""
    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))


def slider(draw: Callable[[int], None], values: Sequence[int], static: Sequence[int], label: str = "t") -> None:
    """An integer slider over ``values`` that redraws with ``draw(value)``; headless, draw the
    ``static`` values one after another instead, so the page still shows the idea.

    The slider starts at ``static[0]``, so every static value must be one of ``values``; it is
    labelled ``label`` and passes its value to ``draw``'s first parameter, whatever its name.
    """
    values = list(values)
    missing = [value for value in static if value not in values]
    if not static or missing:
        raise ValueError(f"slider: the static values {list(static)} must be a non-empty subset of the slider's "
                         f"values (missing: {missing}); pick them from `values`.")
    if headless():
        for value in static:
            draw(value)
        return
    import ipywidgets as widgets
    from IPython.display import display

    control = widgets.SelectionSlider(options=values, value=static[0], description=label, continuous_update=False)
    parameter = next(iter(inspect.signature(draw).parameters))
    display(widgets.interactive(draw, **{parameter: control}))


def ask_box(ask: Callable[..., None], button: str = "Run", **controls) -> None:
    """Show ``controls`` (ipywidgets, by keyword) above a button that calls ``ask(**values)`` once
    per click and shows what it prints and draws beneath, replacing the previous answer.

    Unlike ``ipywidgets.interact_manual``, a text box does not run ``ask`` by itself: there, the
    text committed when the box loses focus runs it too, so typing a prompt and clicking the
    button ran (and drew) everything twice.
    """
    if not controls:
        raise ValueError("ask_box: give at least one control, e.g. prompt=ipywidgets.Text(value='...').")
    unknown = [name for name, control in controls.items() if not hasattr(control, "value")]
    if unknown:
        raise ValueError(f"ask_box: {unknown} are not controls with a value; pass ipywidgets such as Text or IntSlider.")
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import clear_output, display

    run = widgets.Button(description=button)
    out = widgets.Output()

    def on_click(_):
        run.disabled = True                           # one answer at a time
        try:
            with out:                                 # an error is shown here as a traceback
                clear_output(wait=True)
                ask(**{name: control.value for name, control in controls.items()})
                plt.show()                            # figures still open are drawn here, not later
        finally:
            run.disabled = False

    run.on_click(on_click)
    box = widgets.VBox([*controls.values(), run, out])
    box.add_class("widget-interact")                  # styled (and found by the live tests) as interact's
    display(box)


def figures_dir(chapter: str) -> Path:
    """``figures/<chapter>/`` beside the notebook (the kernel's working folder): where a chapter
    writes its GIFs, in a clone (``chapters/figures/``, not committed) as in any folder a notebook
    was downloaded to."""
    path = Path.cwd() / "figures" / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


class LivePreview:
    """A training preview that redraws one figure in place: ``preview(model, step)``.

    ``make_images(model)`` returns a batch of images in [−1, 1]; the figure shows them as a grid
    titled with the step. For anything else than samples, pass ``draw(model, ax, step)`` instead
    (chapter 04 draws its similarity matrix). Headless runs draw only the last preview.
    """

    def __init__(self, make_images: Callable | None, title: str, total_steps: int,
                 draw: Callable | None = None, figsize: tuple[float, float] = (3.2, 3.4)):
        if (make_images is None) == (draw is None):
            raise ValueError("give LivePreview either make_images or draw")
        self.make_images, self.title, self.total_steps = make_images, title, total_steps
        self.draw, self.figsize = draw, figsize
        self.handle = None

    def __call__(self, model, step: int) -> None:
        if headless() and step < self.total_steps:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        from gensynth_course.images import show_grid

        fig, ax = plt.subplots(figsize=self.figsize)
        if self.draw is not None:
            self.draw(model, ax, step)
        else:
            show_grid(self.make_images(model), f"{self.title}\nafter {step} steps", ax=ax)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)


def no_study_yet(eval_args: str, what: str = "seed study") -> None:
    """What a chapter's study cell says when ``eval`` has not yet measured the notebook's models;
    ``eval_args``: the chapter and budget, e.g. "02 --budget standard"."""
    print(f"No {what} of these models in the cache yet: run `python -m gensynth_course eval {eval_args}`, then this "
          "cell again.")

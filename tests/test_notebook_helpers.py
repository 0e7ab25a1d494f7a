"""The notebooks' helpers: sliders that start on one of their values, headless or live."""

import pytest

from gensynth_course import notebook


def test_slider_refuses_a_static_value_it_cannot_show(monkeypatch):
    monkeypatch.setenv("GENSYNTH_HEADLESS", "1")
    with pytest.raises(ValueError, match=r"static values \[99\].*missing: \[99\]"):
        notebook.slider(lambda t: None, values=range(0, 1000, 10), static=[99])


def test_headless_slider_draws_each_static_value(monkeypatch):
    monkeypatch.setenv("GENSYNTH_HEADLESS", "1")
    drawn = []
    assert notebook.slider(drawn.append, values=[0, 9, 19], static=[9, 19]) is None
    assert drawn == [9, 19]


def test_live_slider_starts_on_the_first_static_value(monkeypatch):
    monkeypatch.delenv("GENSYNTH_HEADLESS", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    drawn = []

    def draw(scale):                                     # the label need not be the parameter's name
        drawn.append(scale)

    assert notebook.slider(draw, values=[0, 9, 19], static=[9, 19], label="s") is None
    (box,) = shown
    assert box.children[0].value == 9 and list(box.children[0].options) == [0, 9, 19]
    assert box.children[0].description == "s"
    assert drawn == [9]                                   # the interactive draws its first value

"""The notebooks' helpers: sliders that start on one of their values, headless or live; a prompt box that answers once per click."""

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


def _live_box(monkeypatch, ask, **controls):
    monkeypatch.delenv("GENSYNTH_HEADLESS", raising=False)
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    assert notebook.ask_box(ask, button="Draw", **controls) is None
    (box,) = shown
    return box


def test_ask_box_answers_a_typed_prompt_once(monkeypatch):
    import ipywidgets as widgets

    asked = []
    prompt, scale = widgets.Text(value="a red circle"), widgets.FloatSlider(value=3.0)
    box = _live_box(monkeypatch, lambda prompt, scale: asked.append((prompt, scale)), prompt=prompt, scale=scale)
    assert asked == []                                   # nothing runs before the button is clicked
    prompt.value = "a big blue square"                   # what the text box commits when it loses focus
    run = box.children[2]
    assert run.description == "Draw"
    run.click()
    assert asked == [("a big blue square", 3.0)]         # interact_manual would have run twice
    run.click()
    assert len(asked) == 2 and not run.disabled


def test_ask_box_refuses_what_is_not_a_control(monkeypatch):
    with pytest.raises(ValueError, match="at least one control"):
        _live_box(monkeypatch, lambda: None)
    with pytest.raises(ValueError, match=r"\['prompt'\] are not controls"):
        _live_box(monkeypatch, lambda prompt: None, prompt="a red circle")

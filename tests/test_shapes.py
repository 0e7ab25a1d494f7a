"""The Shapes world: deterministic scenes, captions that are always true of their scene, a split
that keeps the held-out pairs out of training, the renderer, the tokenizer and the evaluator's
bookkeeping."""

import math
import random

import pytest
import torch

from gensynth_course.data import shapes
from gensynth_course.data.tokenizer import Tokenizer, UnknownWordError
from gensynth_course.evaluation.attribute_evaluator import (AttributeEvaluator, attribute_accuracy, caption_accuracy,
                                                            swapped_order)


def test_scenes_and_captions_are_deterministic_by_seed():
    a, b, c = (shapes.make_scenes(200, "train", seed) for seed in (3, 3, 4))
    assert a == b and a != c
    assert shapes.captions(a, seed=5) == shapes.captions(b, seed=5) != shapes.captions(a, seed=6)
    assert torch.equal(shapes.render(a[:20]), shapes.render(b[:20]))
    assert shapes.make_scenes(50, "test", 0) != shapes.make_scenes(50, "train", 0)


def _says(text: str, scene: shapes.Scene) -> bool:
    """Checked from the scene itself: every object's words are in the caption, and the relation
    word agrees with the objects' coordinates (or the position phrase with the lone object's)."""
    words = text.split()
    for obj in scene.objects:
        phrase_ok = any(f"{z} {c} {s}" in text or f"{s} that is {z} and {c}" in text
                        for z in shapes.SIZE_WORDS[obj.size] for c in shapes.COLOUR_WORDS[obj.colour]
                        for s in shapes.SHAPE_WORDS[obj.shape])
        if not phrase_ok:
            return False
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        where = {"left": obj.x < 0.4, "right": obj.x > 0.6, "top": obj.y < 0.4, "bottom": obj.y > 0.6,
                 "centre": 0.4 < obj.x < 0.6 and 0.4 < obj.y < 0.6}
        named = [p for p, phrases in shapes.POSITION_PHRASES.items() if any(ph in text for ph in phrases)]
        return len(named) == 1 and where[named[0]]
    first, second = scene.objects
    # Which object is the subject: the one whose phrase comes first in the caption.
    def position(obj):
        return min(text.find(f"{z} {c} {s}") for z in shapes.SIZE_WORDS[obj.size]
                   for c in shapes.COLOUR_WORDS[obj.colour] for s in shapes.SHAPE_WORDS[obj.shape]
                   if f"{z} {c} {s}" in text)
    subject, reference = (first, second) if position(first) < position(second) else (second, first)
    if any(w in words for w in ("above", "over")):
        return subject.y < reference.y
    if any(w in words for w in ("below", "under", "beneath")):
        return subject.y > reference.y
    if "left" in words:
        return subject.x < reference.x
    return "right" in words and subject.x > reference.x


def test_captions_are_always_true_of_their_scene():
    rng = random.Random(0)
    for split in ("train", "heldout"):
        for scene in shapes.make_scenes(1500, split, seed=2):
            text = shapes.caption(scene, rng)
            assert _says(text, scene), (text, scene)
            assert shapes.parse_caption(text) == scene.describe()


def test_subject_first_sets_which_object_a_caption_names_first():
    scenes = [s for s in shapes.make_scenes(300, "train", seed=3) if len(s.objects) == 2]
    for p, expected in ((1.0, {True}), (0.0, {False}), (0.5, {True, False})):
        rng = random.Random(0)
        firsts = set()
        for scene in scenes:
            text = shapes.caption(scene, rng, subject_first=p)
            assert shapes.parse_caption(text) == scene.describe()
            firsts.add(any(w in text.split() for w in ("above", "over", "left")))
        assert firsts == expected
    with pytest.raises(ValueError, match="subject_first"):
        shapes.caption(scenes[0], random.Random(0), subject_first=1.5)


def test_every_caption_of_a_description_parses_back_to_it():
    for scene in shapes.make_scenes(40, "heldout", seed=0):
        d = scene.describe()
        texts = shapes.all_captions(d)
        assert len(set(texts)) == len(texts) and all(shapes.parse_caption(t) == d for t in texts)


def test_held_out_pairs_never_appear_in_training():
    train = shapes.make_scenes(5000, "train", seed=0) + shapes.make_scenes(2000, "train", seed=1)
    pairs = {(o.shape, o.colour) for s in train for o in s.objects}
    assert not pairs & set(shapes.HELD_OUT)
    assert len(pairs) == len(shapes.SHAPES) * len(shapes.COLOURS) - len(shapes.HELD_OUT)   # the rest all occur
    assert all(any((o.shape, o.colour) in shapes.HELD_OUT for o in s.objects)
               for s in shapes.make_scenes(500, "heldout", seed=0))
    with pytest.raises(ValueError, match="unknown split"):
        shapes.make_scenes(1, "validation")


def test_render_draws_each_object_in_its_colour_where_it_is():
    scene = shapes.Scene((shapes.ShapeObject("square", "red", "large", 0.27, 0.5),
                          shapes.ShapeObject("circle", "blue", "small", 0.73, 0.5)), "side by side")
    for size in (32, 64):
        image = shapes.render([scene], size=size)[0]
        assert image.shape == (3, size, size) and image.dtype == torch.uint8
        assert image[:, size // 2, int(0.27 * size)].tolist() == list(shapes.COLOURS["red"])
        assert image[:, size // 2, int(0.73 * size)].tolist() == list(shapes.COLOURS["blue"])
        assert image[:, 1, 1].tolist() == list(shapes.BACKGROUND)


def test_scene_of_a_description_puts_each_object_at_its_place():
    rng = random.Random(0)
    for _ in range(50):
        description = shapes.random_scene(rng).describe()
        scene = shapes.scene_of(description)
        assert scene.describe() == description
        # the caption grammar reads the scene back to the same description
        assert shapes.parse_caption(shapes.caption(scene, rng)) == description
    above = shapes.scene_of(shapes.Description((("circle", "red", "large"), ("square", "blue", "small")),
                                               "one above the other"))
    assert above.objects[0].y < above.objects[1].y and above.objects[0].x == above.objects[1].x


def test_labels_round_trip_through_descriptions():
    scenes = shapes.make_scenes(300, "heldout", seed=0)
    descriptions = [s.describe() for s in scenes]
    labels = shapes.description_labels(descriptions)
    assert labels.shape == (300, len(shapes.ATTRIBUTES))
    assert shapes.labels_to_descriptions(labels) == descriptions
    lone = torch.tensor([len(s.objects) == 1 for s in scenes])
    assert (labels[lone, 4:] == shapes.IGNORE).all() and (labels[~lone] >= 0).all()


def test_parse_caption_explains_what_is_missing():
    with pytest.raises(shapes.CaptionError, match="colour"):
        shapes.parse_caption("a big circle on the left")
    with pytest.raises(shapes.CaptionError, match="where the object is"):
        shapes.parse_caption("a big red circle")


def test_tokenizer_round_trip_padding_and_mask():
    tok = Tokenizer()
    texts = shapes.captions(shapes.make_scenes(100, "train", 0), seed=0)
    ids, mask = tok.encode(texts)
    assert ids.shape == mask.shape == (100, tok.context_length)
    assert tok.decode(ids) == texts
    assert (ids[:, 0] == tok.bos_id).all()
    lengths = mask.sum(1)
    assert (ids[torch.arange(100), lengths - 1] == tok.eos_id).all()
    assert ((ids == tok.pad_id) == ~mask).all()
    assert lengths.tolist() == [len(t.split()) + 2 for t in texts]


def test_unknown_word_names_it_and_suggests_neighbours():
    tok = Tokenizer()
    with pytest.raises(UnknownWordError) as error:
        tok.encode(["a big red cirle on the left"])
    assert error.value.word == "cirle" and "circle" in error.value.suggestions
    assert "'cirle'" in str(error.value) and "'circle'" in str(error.value)
    with pytest.raises(ValueError, match="at most"):
        tok.encode([" ".join(["red"] * 20)])


def test_attribute_accuracy_and_caption_accuracy_bookkeeping(monkeypatch):
    data = shapes.load_shapes("test", 50, seed=0)
    truth = data.labels.clamp(min=0)
    evaluator = AttributeEvaluator()
    monkeypatch.setattr(evaluator, "predict", lambda images: truth.clone())
    assert attribute_accuracy(evaluator, data.images, data.labels)["scene"] == 1.0
    texts = shapes.captions(data.scenes, seed=0)
    assert caption_accuracy(data.images, texts, evaluator).all()
    swapped = texts[1:] + texts[:1]                # each image with its neighbour's caption
    assert not caption_accuracy(data.images, swapped, evaluator).any()


def test_swapped_order_is_both_objects_and_the_layout_right_each_in_the_other_s_place():
    red, blue = ("circle", "red", "small"), ("square", "blue", "large")
    caption = shapes.parse_caption("a small red circle above a big blue square")
    assert caption == shapes.Description((red, blue), "one above the other")
    seen = [shapes.Description((blue, red), "one above the other"), caption,
            shapes.Description((blue, red), "side by side"), shapes.Description((blue, ("circle", "red", "large")),
                                                                                "one above the other")]
    assert swapped_order([caption] * 4, seen).tolist() == [True, False, False, False]
    alone = shapes.Description((red,), "left")
    assert swapped_order([alone], [alone]).tolist() == [False]


def test_likeness_scenes_are_balanced_true_to_their_label_and_never_held_out():
    scenes = shapes.likeness_scenes(40, "train", seed=3)
    assert scenes == shapes.likeness_scenes(40, "train", seed=3) != shapes.likeness_scenes(40, "test", seed=3)
    labels = [shapes.likeness(scene) for scene in scenes]
    assert sorted(labels) == sorted(list(range(len(shapes.LIKENESS))) * 10)
    for scene, label in zip(scenes, labels):
        a, b = scene.objects
        assert shapes.LIKENESS[label] == {(False, False): "neither", (True, False): "same shape",
                                          (False, True): "same colour",
                                          (True, True): "same shape and colour"}[a.shape == b.shape, a.colour == b.colour]
        assert a.kind != b.kind and not shapes._has_held_out(scene)
    with pytest.raises(ValueError, match="two objects"):
        shapes.likeness(shapes.scene_of(shapes.Description((("circle", "red", "small"),), "left")))
    with pytest.raises(ValueError, match="train or test"):
        shapes.likeness_scenes(4, "heldout")


def test_segment_classes_name_each_shape_colour_pair_once():
    assert shapes.SEGMENT_CLASSES[0] == "background"
    assert len(shapes.SEGMENT_CLASSES) == 1 + len(shapes.SHAPES) * len(shapes.COLOURS) == 25
    indices = {shapes.segment_class(s, c) for s in shapes.SHAPES for c in shapes.COLOURS}
    assert indices == set(range(1, 25))
    assert shapes.SEGMENT_CLASSES[shapes.segment_class("cross", "cyan")] == "cyan cross"
    with pytest.raises(ValueError, match="no segment class for a 'pink' 'circle'"):
        shapes.segment_class("circle", "pink")


def _closed_form_area(shape: str, r: float) -> float:
    """The area of a shape of half-extent r, from the inside tests of ``shapes._coverage``."""
    return {"circle": math.pi * r ** 2, "square": (1.7 * r) ** 2,     # side 2 · 0.85 r
            "triangle": 1.85 * r ** 2,                               # height 1.85 r, base 2 · 1.85 r / 1.85
            "cross": 2 * (2 * r) * (2 * r / 3) - (2 * r / 3) ** 2}[shape]   # two bars less their overlap


def test_segmentation_maps_agree_with_the_rendered_image():
    scenes = shapes.make_scenes(300, "all", seed=3)
    for size in (32, 64):
        maps, images = shapes.segmentation_maps(scenes, size), shapes.render(scenes, size).long()
        assert maps.shape == (300, size, size) and maps.dtype == torch.long
        colour_of = torch.tensor([shapes.BACKGROUND] + [shapes.COLOURS[name.split()[0]]
                                                        for name in shapes.SEGMENT_CLASSES[1:]])   # (25, 3)
        expected = colour_of[maps].permute(0, 3, 1, 2)                                            # (N, 3, H, W)
        background = torch.tensor(shapes.BACKGROUND).view(1, 3, 1, 1)
        # a pixel drawn fully in an object's colour lies in that object's region (of that colour)
        full = torch.stack([(images == torch.tensor(c).view(1, 3, 1, 1)).all(1) for c in shapes.COLOURS.values()])
        assert (expected == images).all(1)[full.any(0)].all()
        # a region pixel is at least half its object's colour: nearer to it than to the background
        region = maps > 0
        to_colour = (images - expected).abs().sum(1).float()
        to_background = (images - background).abs().sum(1).float()
        assert (to_colour <= to_background + 3)[region].float().mean() > 0.99
        assert (maps == 0)[(images == background).all(1)].all()
    # region areas are the shapes' closed-form areas (one-object scenes: nothing overlaps)
    lone = [s for s in scenes if len(s.objects) == 1]
    maps = shapes.segmentation_maps(lone, 64)
    areas = {}
    for scene, area in zip(lone, (maps > 0).sum((1, 2)).tolist()):
        areas.setdefault(scene.objects[0].shape, []).append(area / _closed_form_area(
            scene.objects[0].shape, shapes.HALF_SIZE[scene.objects[0].size] * 64))
    assert set(areas) == set(shapes.SHAPES)
    for shape, ratios in areas.items():
        assert sum(ratios) / len(ratios) == pytest.approx(1.0, rel=0.05), shape


def test_segmentation_maps_give_each_object_its_class_where_it_is():
    scene = shapes.Scene((shapes.ShapeObject("square", "red", "large", 0.27, 0.5),
                          shapes.ShapeObject("circle", "blue", "small", 0.73, 0.5)), "side by side")
    seg = shapes.segmentation_maps([scene], 32)[0]
    assert seg[16, int(0.27 * 32)] == shapes.segment_class("square", "red")
    assert seg[16, int(0.73 * 32)] == shapes.segment_class("circle", "blue")
    assert seg[1, 1] == 0 and set(seg.unique().tolist()) == {0, shapes.segment_class("square", "red"),
                                                              shapes.segment_class("circle", "blue")}
    assert shapes.segmentation_maps([], 32).shape == (0, 32, 32)

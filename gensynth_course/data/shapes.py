"""The Shapes world: generated scenes with exact captions.

Chapters 04–07 need images paired with text, offline. Here a scene is one or two coloured shapes
on a plain background, and its caption comes from a small grammar, so every caption is *exactly*
true of its scene and any generated image can be checked against the caption that asked for it.

* Attributes: four shapes, six colours, two sizes; one object sits at one of five positions, two
  objects are side by side or one above the other (a relation: above, below, left of, right of).
* Captions: several templates and synonyms ("a big red circle on the left", "there is a small
  violet square above a large green triangle"), so the text is not a fixed code.
* Splits: ``train`` never contains a held-out shape–colour pair (:data:`HELD_OUT`) in any object;
  ``test`` is drawn the same way from another seed stream; ``heldout`` scenes each contain at least
  one held-out pair, for compositional zero-shot tests; ``all`` draws from every combination (for
  the attribute evaluator, a judge that must know the held-out pairs too).
* Rendering is vectorised and anti-aliased (each pixel averages a 4 × 4 grid of sub-samples);
  scenes and captions are deterministic given a seed.
* Every scene also has an exact segmentation map (:func:`segmentation_maps`): one class per pixel,
  the background or a shape–colour pair, from the same coverage the renderer blends with; it is the
  image-shaped constraint of semantic image synthesis.
"""

from __future__ import annotations

import difflib
import random
import re
import unicodedata
from dataclasses import dataclass

import torch

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {  # RGB in [0, 255]; six hues far enough apart to tell at a glance
    "red": (225, 45, 45), "green": (45, 185, 65), "blue": (55, 95, 235),
    "yellow": (240, 215, 45), "purple": (155, 65, 205), "cyan": (50, 205, 215),
}
COLOUR_NAMES = tuple(COLOURS)
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "centre")   # where a lone object sits
ARRANGEMENTS = ("side by side", "one above the other")    # how two objects sit
LAYOUTS = POSITIONS + ARRANGEMENTS                          # one label covers count and placement
RELATIONS = ("above", "below", "left of", "right of")
BACKGROUND = (18, 18, 24)

# Shape–colour pairs that never appear in the training split (each shape and colour once).
HELD_OUT = (("circle", "green"), ("square", "purple"), ("triangle", "blue"), ("cross", "yellow"))
SPLITS = ("train", "test", "heldout", "all")

HALF_SIZE = {"small": 0.12, "large": 0.2}   # half-extent of a shape, as a fraction of the image
_POSITION_CENTRES = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27),
                     "bottom": (0.5, 0.73), "centre": (0.5, 0.5)}

# The grammar: every way of saying each attribute value.
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
COLOUR_WORDS = {"red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
                "purple": ("purple", "violet"), "cyan": ("cyan",)}
SHAPE_WORDS = {"circle": ("circle", "disc"), "square": ("square",), "triangle": ("triangle",),
               "cross": ("cross", "plus")}
POSITION_PHRASES = {"left": ("on the left", "at the left"), "right": ("on the right", "at the right"),
                    "top": ("at the top", "near the top"), "bottom": ("at the bottom", "near the bottom"),
                    "centre": ("in the centre", "in the middle")}
RELATION_PHRASES = {"above": ("above", "over"), "below": ("below", "under", "beneath"),
                    "left of": ("to the left of", "left of"), "right of": ("to the right of", "right of")}
ONE_OBJECT_TEMPLATES = ("a {size} {colour} {shape} {where}", "there is a {size} {colour} {shape} {where}",
                        "{where} there is a {size} {colour} {shape}", "a {shape} that is {size} and {colour} {where}")
TWO_OBJECT_TEMPLATES = ("a {a} {relation} a {b}", "there is a {a} {relation} a {b}", "a {a} is {relation} a {b}")


@dataclass(frozen=True)
class ShapeObject:
    """One object: what it is (shape, colour, size) and where its centre is (x, y in [0, 1],
    y pointing down as in an image)."""

    shape: str
    colour: str
    size: str
    x: float = 0.5
    y: float = 0.5

    @property
    def kind(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.size)


@dataclass(frozen=True)
class Scene:
    """One object at ``layout`` (a position), or two objects side by side or one above the other,
    stored left-to-right or top-to-bottom (slot 0 is the left or upper one)."""

    objects: tuple[ShapeObject, ...]
    layout: str

    def describe(self) -> "Description":
        return Description(tuple(o.kind for o in self.objects), self.layout)


@dataclass(frozen=True)
class Description:
    """What a caption says: the (shape, colour, size) of each slot, and the layout. Two captions
    with the same description are true of the same scenes."""

    kinds: tuple[tuple[str, str, str], ...]
    layout: str


class CaptionError(ValueError):
    """A caption the Shapes grammar cannot read (the message says what is missing)."""


# ----------------------------------------------------------------------------- scenes


def _random_object(rng: random.Random, x: float, y: float, exclude=None, allow_held_out=True) -> ShapeObject:
    while True:
        obj = ShapeObject(rng.choice(SHAPES), rng.choice(COLOUR_NAMES), rng.choice(SIZES), x, y)
        if exclude is not None and obj.kind == exclude:
            continue          # two identical objects would make "the red circle" ambiguous
        if not allow_held_out and (obj.shape, obj.colour) in HELD_OUT:
            continue
        return obj


def random_scene(rng: random.Random, allow_held_out: bool = True) -> Scene:
    """One scene: one object (half the time) or two, with a little jitter in every position."""
    jitter = lambda scale: rng.uniform(-scale, scale)  # noqa: E731
    if rng.random() < 0.5:
        position = rng.choice(POSITIONS)
        cx, cy = _POSITION_CENTRES[position]
        return Scene((_random_object(rng, cx + jitter(0.04), cy + jitter(0.04), allow_held_out=allow_held_out),), position)
    layout = rng.choice(ARRANGEMENTS)
    along = [0.27 + jitter(0.03), 0.73 + jitter(0.03)]        # the axis that separates the two
    across = [0.5 + jitter(0.15), 0.5 + jitter(0.15)]         # the other axis, freer
    xs, ys = (along, across) if layout == "side by side" else (across, along)
    first = _random_object(rng, xs[0], ys[0], allow_held_out=allow_held_out)
    second = _random_object(rng, xs[1], ys[1], exclude=first.kind, allow_held_out=allow_held_out)
    return Scene((first, second), layout)


def scene_of(description: Description) -> Scene:
    """The scene a description names, each object at the centre of its place (no jitter)."""
    if description.layout in POSITIONS:
        return Scene((ShapeObject(*description.kinds[0], *_POSITION_CENTRES[description.layout]),), description.layout)
    places = ((0.27, 0.5), (0.73, 0.5)) if description.layout == "side by side" else ((0.5, 0.27), (0.5, 0.73))
    return Scene(tuple(ShapeObject(*kind, *place) for kind, place in zip(description.kinds, places)), description.layout)


def _has_held_out(scene: Scene) -> bool:
    return any((o.shape, o.colour) in HELD_OUT for o in scene.objects)


def make_scenes(n: int, split: str = "train", seed: int = 0) -> list[Scene]:
    """``n`` scenes of a split, the same for the same ``(split, seed)`` on every machine.

    ``train`` and ``test`` never contain a held-out shape–colour pair; every ``heldout`` scene has at
    least one (drawn until it does, so held-out objects appear in all layouts and sizes); ``all``
    allows every combination.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    rng = random.Random(1_000_003 * seed + SPLITS.index(split))
    scenes = []
    while len(scenes) < n:
        scene = random_scene(rng, allow_held_out=split in ("heldout", "all"))
        if split != "heldout" or _has_held_out(scene):
            scenes.append(scene)
    return scenes


# ----------------------------------------------------------------------------- rendering


def _coverage(shape_index: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """1 where a sub-sample at offset (dx, dy) from the centre lies inside the shape, else 0.
    All four shapes are evaluated and the right one picked, which keeps the loop in tensor ops."""
    ax, ay = dx.abs(), dy.abs()
    inside = torch.stack([
        dx ** 2 + dy ** 2 <= r ** 2,                                         # circle
        torch.maximum(ax, ay) <= 0.85 * r,                                   # square (≈ the circle's area)
        (dy <= 0.85 * r) & (ax <= (dy + r) / 1.85),                          # triangle, apex up
        ((ax <= r / 3) & (ay <= r)) | ((ay <= r / 3) & (ax <= r)),          # cross
    ])                                                                        # (4, N, H, W)
    return inside.gather(0, shape_index.expand(1, *dx.shape)).squeeze(0).float()


def _slot_coverage(chunk: list[Scene], slot: int, size: int, supersample: int):
    """For the scenes of ``chunk`` that have an object in ``slot``: their rows in the chunk, those
    objects, and the share of each pixel the object covers (n, 1, size, size), from a
    ``supersample × supersample`` grid of sub-samples per pixel; None when no scene has one."""
    objects = [(i, sc.objects[slot]) for i, sc in enumerate(chunk) if len(sc.objects) > slot]
    if not objects:
        return None
    s = size * supersample
    coords = (torch.arange(s, dtype=torch.float32) + 0.5) / s                # sub-sample centres in [0, 1]
    rows = torch.tensor([i for i, _ in objects])
    shape_index = torch.tensor([SHAPES.index(o.shape) for _, o in objects]).view(1, -1, 1, 1)
    cx = torch.tensor([o.x for _, o in objects]).view(-1, 1, 1)
    cy = torch.tensor([o.y for _, o in objects]).view(-1, 1, 1)
    r = torch.tensor([HALF_SIZE[o.size] for _, o in objects]).view(-1, 1, 1)
    dx, dy = coords.view(1, 1, s) - cx, coords.view(1, s, 1) - cy
    inside = _coverage(shape_index, dx.expand(-1, s, s), dy.expand(-1, s, s), r)
    return rows, [o for _, o in objects], torch.nn.functional.avg_pool2d(inside[:, None], supersample)


@torch.no_grad()
def render(scenes: list[Scene], size: int = 32, supersample: int = 4, batch_size: int = 512) -> torch.Tensor:
    """Draw scenes as uint8 images (N, 3, size, size); 32 × 32 by default, 64 × 64 works too."""
    out = []
    background = torch.tensor(BACKGROUND, dtype=torch.float32).view(1, 3, 1, 1)
    for start in range(0, len(scenes), batch_size):
        chunk = scenes[start:start + batch_size]
        image = background.expand(len(chunk), 3, size, size).clone()
        for slot in range(2):
            covered = _slot_coverage(chunk, slot, size, supersample)
            if covered is None:
                continue
            rows, objects, alpha = covered                                      # alpha: (n, 1, size, size)
            colour = torch.tensor([COLOURS[o.colour] for o in objects], dtype=torch.float32).view(-1, 3, 1, 1)
            image[rows] = image[rows] * (1 - alpha) + colour * alpha
        out.append(image.round().to(torch.uint8))
    return torch.cat(out) if out else torch.zeros(0, 3, size, size, dtype=torch.uint8)


# The classes of a segmentation map: the background, then one per shape–colour pair (size and place
# are read off the region itself, as a segmentation map shows them).
SEGMENT_CLASSES = ("background",) + tuple(f"{colour} {shape}" for shape in SHAPES for colour in COLOUR_NAMES)


def segment_class(shape: str, colour: str) -> int:
    """The index in :data:`SEGMENT_CLASSES` of the region of a ``colour`` ``shape``."""
    if shape not in SHAPES or colour not in COLOURS:
        raise ValueError(f"no segment class for a {colour!r} {shape!r}; shapes are {', '.join(SHAPES)} and "
                         f"colours {', '.join(COLOUR_NAMES)}.")
    return 1 + SHAPES.index(shape) * len(COLOUR_NAMES) + COLOUR_NAMES.index(colour)


@torch.no_grad()
def segmentation_maps(scenes: list[Scene], size: int = 32, supersample: int = 4,
                      batch_size: int = 512) -> torch.Tensor:
    """The exact segmentation map of each scene, (N, size, size) class indices into
    :data:`SEGMENT_CLASSES`: a pixel belongs to the object that covers at least half of it, from the
    same sub-sample coverage :func:`render` blends with (the second object, drawn on top, wins where
    both do), and to the background otherwise."""
    out = []
    for start in range(0, len(scenes), batch_size):
        chunk = scenes[start:start + batch_size]
        maps = torch.zeros(len(chunk), size, size, dtype=torch.long)
        for slot in range(2):
            covered = _slot_coverage(chunk, slot, size, supersample)
            if covered is None:
                continue
            rows, objects, alpha = covered
            label = torch.tensor([segment_class(o.shape, o.colour) for o in objects]).view(-1, 1, 1)
            maps[rows] = torch.where(alpha[:, 0] >= 0.5, label, maps[rows])
        out.append(maps)
    return torch.cat(out) if out else torch.zeros(0, size, size, dtype=torch.long)


# ----------------------------------------------------------------------------- captions


def caption(scene: Scene, rng: random.Random, subject_first: float = 0.5) -> str:
    """One caption of ``scene``, with a random template and random synonyms; always true of it. A
    two-object caption names the upper or left object first ("A above B") with probability
    ``subject_first``, else the other ("B below A")."""
    if not 0.0 <= subject_first <= 1.0:
        raise ValueError(f"subject_first is a probability, between 0 and 1, not {subject_first!r}")
    def words(obj: ShapeObject) -> dict:
        return dict(size=rng.choice(SIZE_WORDS[obj.size]), colour=rng.choice(COLOUR_WORDS[obj.colour]),
                    shape=rng.choice(SHAPE_WORDS[obj.shape]))

    if len(scene.objects) == 1:
        template = rng.choice(ONE_OBJECT_TEMPLATES)
        return template.format(where=rng.choice(POSITION_PHRASES[scene.layout]), **words(scene.objects[0]))
    first, second = scene.objects
    # Either object can be the subject: "A above B" and "B below A" say the same thing.
    if rng.random() < subject_first:
        subject, reference, relation = first, second, "above" if scene.layout == "one above the other" else "left of"
    else:
        subject, reference, relation = second, first, "below" if scene.layout == "one above the other" else "right of"
    phrase = lambda o: "{size} {colour} {shape}".format(**words(o))  # noqa: E731
    return rng.choice(TWO_OBJECT_TEMPLATES).format(a=phrase(subject), b=phrase(reference),
                                                   relation=rng.choice(RELATION_PHRASES[relation]))


def captions(scenes: list[Scene], seed: int = 0) -> list[str]:
    """One caption per scene, deterministic given ``seed``."""
    rng = random.Random(seed)
    return [caption(scene, rng) for scene in scenes]


def all_captions(description: Description) -> list[str]:
    """Every caption the grammar can say for a description (used for prompt ensembles)."""
    def phrases(kind):
        shape, colour, size = kind
        return [(s, c, h) for s in SIZE_WORDS[size] for c in COLOUR_WORDS[colour] for h in SHAPE_WORDS[shape]]

    if len(description.kinds) == 1:
        return [t.format(size=s, colour=c, shape=h, where=w)
                for t in ONE_OBJECT_TEMPLATES for (s, c, h) in phrases(description.kinds[0])
                for w in POSITION_PHRASES[description.layout]]
    first, second = description.kinds
    above = description.layout == "one above the other"
    out = []
    for subject, reference, relation in ((first, second, "above" if above else "left of"),
                                         (second, first, "below" if above else "right of")):
        for a in phrases(subject):
            for b in phrases(reference):
                for rel in RELATION_PHRASES[relation]:
                    out += [t.format(a=" ".join(a), b=" ".join(b), relation=rel) for t in TWO_OBJECT_TEMPLATES]
    return out


def vocabulary() -> list[str]:
    """Every word the grammar uses, sorted."""
    words = set()
    for table in (SIZE_WORDS, COLOUR_WORDS, SHAPE_WORDS, POSITION_PHRASES, RELATION_PHRASES):
        for phrases in table.values():
            for phrase in phrases:
                words.update(phrase.split())
    for template in ONE_OBJECT_TEMPLATES + TWO_OBJECT_TEMPLATES:
        words.update(w for w in template.split() if not w.startswith("{"))
    return sorted(words)


def caption_words(text: str) -> list[str]:
    """The lower-case words of a caption: runs of letters and digits (accents kept, so that an
    unknown word is reported whole); punctuation is dropped."""
    return re.findall(r"[^\W_]+", unicodedata.normalize("NFC", text).lower())


def _lookup(table: dict) -> dict:
    return {word: value for value, words in table.items() for word in words}


_SIZE, _COLOUR, _SHAPE = _lookup(SIZE_WORDS), _lookup(COLOUR_WORDS), _lookup(SHAPE_WORDS)
_VOCABULARY = set(vocabulary())
_POSITION_WORDS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "centre": "centre",
                   "middle": "centre"}


def _read_object(words: list[str], text: str) -> tuple[str, str, str]:
    found = {}
    for name, table in (("size", _SIZE), ("colour", _COLOUR), ("shape", _SHAPE)):
        values = {table[w] for w in words if w in table}
        if len(values) != 1:
            what = "no" if not values else "more than one"
            unknown = [w for w in words if w not in _VOCABULARY] if not values else []
            if unknown:     # name the unknown word, preferring one that looks like a misspelt attribute
                close = {w: difflib.get_close_matches(w, list(table), n=3, cutoff=0.6) for w in unknown}
                word = next((w for w in unknown if close[w]), unknown[0])
                hint = f" (did you mean {' or '.join(repr(c) for c in close[word])}?)" if close[word] else ""
                what = f"unknown word {word!r}{hint} and no"
            raise CaptionError(f"{text!r}: {what} {name} word in {' '.join(words)!r}. Each object needs one size "
                               f"({', '.join(SIZES)}), one colour ({', '.join(COLOUR_NAMES)}) and one shape "
                               f"({', '.join(SHAPES)}), e.g. 'a small red circle on the left'.")
        found[name] = values.pop()
    return (found["shape"], found["colour"], found["size"])


def parse_caption(text: str) -> Description:
    """Read what a caption says, for any sentence of the grammar (and close variations of it).

    Two objects are recognised by a relation word (above, over, below, under, beneath, or left/right
    followed by "of"); the caption is split there into subject and reference.
    """
    if not isinstance(text, str):
        raise CaptionError(f"parse_caption reads one caption, a string, not {type(text).__name__}; for a list "
                           "of captions use [parse_caption(c) for c in captions].")
    words = caption_words(text)
    if not words:
        raise CaptionError(f"the caption {text!r} has no words; describe a scene, e.g. 'a small red circle on "
                           "the left'.")
    for i, word in enumerate(words):
        relation = None
        if word in ("above", "over"):
            relation, end = "above", i + 1
        elif word in ("below", "under", "beneath"):
            relation, end = "below", i + 1
        elif word in ("left", "right") and i + 1 < len(words) and words[i + 1] == "of":
            relation, end = f"{word} of", i + 2
        if relation:
            subject, reference = _read_object(words[:i], text), _read_object(words[end:], text)
            if relation in ("above", "left of"):
                kinds = (subject, reference)
            else:
                kinds = (reference, subject)
            layout = "one above the other" if relation in ("above", "below") else "side by side"
            return Description(kinds, layout)
    positions = {_POSITION_WORDS[w] for w in words if w in _POSITION_WORDS}
    if len(positions) != 1:
        raise CaptionError(f"{text!r}: say where the object is with one of {', '.join(POSITIONS)} "
                           "(e.g. 'on the left', 'in the middle'), or relate two objects with "
                           "above, below, left of or right of.")
    return Description((_read_object(words, text),), positions.pop())


# ----------------------------------------------------------------------------- labels


# The attribute evaluator's targets, one column each; slot-1 columns are IGNORE for one object.
ATTRIBUTES = ("layout", "shape_0", "colour_0", "size_0", "shape_1", "colour_1", "size_1")
ATTRIBUTE_VALUES = {"layout": LAYOUTS, "shape_0": SHAPES, "colour_0": COLOUR_NAMES, "size_0": SIZES,
                    "shape_1": SHAPES, "colour_1": COLOUR_NAMES, "size_1": SIZES}
IGNORE = -1


def description_labels(descriptions: list[Description]) -> torch.Tensor:
    """(N, 7) integer labels in the order of :data:`ATTRIBUTES`."""
    rows = []
    for d in descriptions:
        row = [LAYOUTS.index(d.layout)]
        for slot in range(2):
            if slot < len(d.kinds):
                shape, colour, size = d.kinds[slot]
                row += [SHAPES.index(shape), COLOUR_NAMES.index(colour), SIZES.index(size)]
            else:
                row += [IGNORE] * 3
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long).view(-1, len(ATTRIBUTES))


def labels_to_descriptions(labels: torch.Tensor) -> list[Description]:
    """The inverse of :func:`description_labels` (for predicted labels)."""
    out = []
    for row in labels.tolist():
        layout = LAYOUTS[row[0]]
        slots = 1 if layout in POSITIONS else 2
        kinds = tuple((SHAPES[row[1 + 3 * k]], COLOUR_NAMES[row[2 + 3 * k]], SIZES[row[3 + 3 * k]]) for k in range(slots))
        out.append(Description(kinds, layout))
    return out


# A label no training of the course ever sees (chapter 07's downstream task): do the two objects
# of a scene share their shape, their colour, both, or neither? A relation between the objects,
# where every other label names one object.
LIKENESS = ("neither", "same shape", "same colour", "same shape and colour")


def likeness(scene: Scene) -> int:
    """The index in :data:`LIKENESS` of a two-object scene."""
    if len(scene.objects) != 2:
        raise ValueError(f"likeness needs a scene of two objects, not {len(scene.objects)}")
    a, b = scene.objects
    return int(a.shape == b.shape) + 2 * int(a.colour == b.colour)


def likeness_scenes(n: int, split: str = "train", seed: int = 0) -> list[Scene]:
    """``n`` two-object scenes of a split (``train`` or ``test``: no held-out pair), as many of
    each :data:`LIKENESS` class as ``n`` allows, in a shuffled order; the same for the same
    ``(n, split, seed)``. Random scenes seldom repeat a shape and a colour (1 in 24), so each
    scene is drawn until its class is the one still wanted."""
    if split not in ("train", "test"):
        raise ValueError(f"likeness scenes come from the train or test split, not {split!r}")
    rng = random.Random(7_000_019 * seed + SPLITS.index(split))
    wanted = [k % len(LIKENESS) for k in range(n)]
    rng.shuffle(wanted)
    scenes = []
    for target in wanted:
        while True:
            scene = random_scene(rng, allow_held_out=False)
            if len(scene.objects) == 2:
                a, b = scene.objects
                if target == 3:           # a scene never repeats a whole kind, so the sizes differ
                    b = ShapeObject(a.shape, a.colour, "small" if a.size == "large" else "large", b.x, b.y)
                elif target == 1 and a.shape != b.shape:
                    b = ShapeObject(a.shape, b.colour, b.size, b.x, b.y)
                elif target == 2 and a.colour != b.colour:
                    b = ShapeObject(b.shape, a.colour, b.size, b.x, b.y)
                scene = Scene((a, b), scene.layout)
                if likeness(scene) == target and not _has_held_out(scene):
                    break
        scenes.append(scene)
    return scenes


@dataclass
class ShapesDataset:
    """Scenes of one split with their rendered images (uint8) and attribute labels, in memory."""

    scenes: list[Scene]
    images: torch.Tensor
    labels: torch.Tensor
    split: str

    def __len__(self) -> int:
        return len(self.scenes)

    def descriptions(self) -> list[Description]:
        return [s.describe() for s in self.scenes]


def load_shapes(split: str, n: int, seed: int = 0, size: int = 32) -> ShapesDataset:
    """Make and render ``n`` scenes of a split (a few seconds for 20,000 scenes at 32 × 32)."""
    scenes = make_scenes(n, split, seed)
    return ShapesDataset(scenes, render(scenes, size), description_labels([s.describe() for s in scenes]), split)


def captioned_batch(data: ShapesDataset, batch_size: int, generator: torch.Generator,
                    subject_first: float = 0.5) -> tuple[torch.Tensor, list[str]]:
    """One training batch of the Shapes world, drawn from ``generator`` alone: the indices of
    ``batch_size`` random scenes of ``data`` and a fresh caption for each (a new template and new
    synonyms every time a scene is drawn, so a caption never becomes a fixed code for its scene;
    ``subject_first``: see :func:`caption`)."""
    idx = torch.randint(0, len(data), (batch_size,), generator=generator)
    rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
    return idx, [caption(data.scenes[i], rng, subject_first) for i in idx.tolist()]

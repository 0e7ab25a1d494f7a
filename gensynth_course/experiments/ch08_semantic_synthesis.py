"""Chapter 08's experiments: semantic image synthesis through a second codebook (Esser et al. 2021,
sections 3.3–3.4; seed 002), on the Shapes world.

Two VQ autoencoders turn a scene into two token grids with their own codebooks: a VQGAN on the
32×32 RGB image, and a VQ autoencoder on its exact segmentation map
(:func:`~gensynth_course.data.shapes.segmentation_maps`: one class per pixel, one-hot in, one
logit per class out, judged by cross-entropy). A causal transformer
(:class:`~gensynth_course.models.vq.prior.CodePrior` with a constraint) reads the map's tokens
and then predicts the image's, so drawing from it turns a map into a picture. The attribute
evaluator of chapter 04 judges whether the picture shows what the map says (layout, and shape,
colour and size of every object); real images are the ceiling, and the control is the same judge on
pictures drawn from another scene's map. A map wider than the training window is drawn by the
sliding window, each step reading the window of the map around the new code.

Every figure carries an interval: a 95 % bootstrap over the scenes for one prior, and over the
training seeds of the prior in ``eval 08``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from gensynth_course.budget import by_budget
from gensynth_course.cache import config_hash, load_or_train, load_study, save_study
from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.device import model_device
from gensynth_course.evaluation import stats
from gensynth_course.evaluation.attribute_evaluator import (AttributeEvaluator, attribute_accuracy, evaluator_config,
                                                            load_attribute_evaluator)
from gensynth_course.experiments import Training
from gensynth_course.models.vq.prior import CodePrior, sample_sliding_window
from gensynth_course.models.vq.vqgan import VQAutoencoder, VQGANTrainer
from gensynth_course.train import fit

CHAPTER = __name__.rsplit(".", 1)[-1]        # the cache folder: the module's name, as everywhere
IMAGE_SIZE = 32
MAP_CLASSES = len(shapes.SEGMENT_CLASSES)
SEEDS = (0, 1, 2)                            # the priors ``eval 08`` trains (the autoencoders: seed 0)


# ----------------------------------------------------------------------------- the two autoencoders


def autoencoder_config(kind: str, budget: str) -> dict:
    """One recipe for both autoencoders, f = 4 (a 32×32 input becomes an 8×8 grid): ``"image"`` is
    a VQGAN on the RGB scenes (L1 + the adaptive-weight GAN loss of chapter 02), ``"map"`` a VQ
    autoencoder on the one-hot segmentation maps, judged by cross-entropy, with a codebook of 128:
    each of its codes must say which classes meet in a 4×4 patch and along which edge (with 32 codes
    and 300 steps, a third of the object pixels came back with the wrong class)."""
    if kind not in ("image", "map"):
        raise ValueError(f"unknown autoencoder {kind!r}; choose 'image' or 'map'.")
    config = dict(kind=kind, widths=[32, 64], dim=16, num_codes=64 if kind == "image" else 128, beta=0.25,
                  restart_dead=True, batch_size=64, lr=1e-3, betas=[0.5, 0.9], seed=0,
                  train_scenes=by_budget(quick=500, standard=20_000, budget=budget),
                  steps=by_budget(quick=30, standard=700 if kind == "image" else 600, full=4000, budget=budget))
    if kind == "image":
        config.update(gan_weight=0.1, disc_width=32, disc_start=by_budget(quick=10, standard=350, full=2000,
                                                                         budget=budget))
    return config


def build_autoencoder(config: dict) -> VQGANTrainer | VQAutoencoder:
    channels = 3 if config["kind"] == "image" else MAP_CLASSES
    autoencoder = VQAutoencoder(tuple(config["widths"]), config["dim"], config["num_codes"], config["beta"],
                                restart_dead=config["restart_dead"], in_channels=channels, out_channels=channels,
                                image_size=IMAGE_SIZE)
    if config["kind"] == "map":
        return autoencoder
    return VQGANTrainer(autoencoder, perceptual=None, gan=True, disc_start=config["disc_start"],
                        gan_weight=config["gan_weight"], disc_width=config["disc_width"])


def one_hot_maps(maps: torch.Tensor) -> torch.Tensor:
    """Segmentation maps (N, H, W) of class indices → (N, classes, H, W) one-hot floats."""
    return F.one_hot(maps, MAP_CLASSES).permute(0, 3, 1, 2).float()


def map_loss(autoencoder: VQAutoencoder, maps: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The map autoencoder's loss: the cross-entropy of the decoded class logits against the map's
    classes, plus the VQ loss (the quantizer's codebook and commitment terms, as in chapter 02)."""
    logits, _, vq_loss = autoencoder(one_hot_maps(maps))
    rec = F.cross_entropy(logits, maps)
    return rec + vq_loss, {"rec": rec.item(), "vq": vq_loss.item()}


def training_scenes(n: int) -> shapes.ShapesDataset:
    """The ``n`` training scenes every model of the chapter learns from (the train split, seed 0)."""
    return shapes.load_shapes("train", n, seed=0, size=IMAGE_SIZE)


def load_autoencoder(config: dict, preview=None, preview_every: int = 0, device: torch.device | str | None = None):
    """``(autoencoder, info)`` of ``config`` (:func:`autoencoder_config`), from the cache or trained
    now; ``info`` holds the per-step loss terms (``terms``)."""
    kind = config["kind"]

    def train(model, checkpoint):
        data = training_scenes(config["train_scenes"])
        inputs = to_model_range(data.images) if kind == "image" else shapes.segmentation_maps(data.scenes, IMAGE_SIZE)

        def batch_fn(step, generator):
            return (inputs[torch.randint(0, len(inputs), (config["batch_size"],), generator=generator)],)

        def loss_fn(model, batch, generator):
            if kind == "map":
                return map_loss(model, batch[0])
            return model.loss(batch[0]), model.last_terms

        history = fit(model, loss_fn, batch_fn, config["steps"], lr=config["lr"], betas=tuple(config["betas"]),
                      seed=config["seed"], grad_clip=None, preview=preview, preview_every=preview_every,
                      checkpoint=checkpoint, desc=f"training the {kind} autoencoder", device=device)
        return {"terms": history["parts"], "losses": history["losses"], "steps": history["steps"],
                "seconds": history["seconds"]}

    model, info = load_or_train(CHAPTER, f"{kind}_autoencoder", config, lambda: build_autoencoder(config), train,
                                device=device)
    return (model if kind == "map" else model.autoencoder).eval(), info


@torch.no_grad()
def encode_images(autoencoder: VQAutoencoder, images_uint8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Code grids (N, 8, 8) of uint8 images."""
    device = model_device(autoencoder)
    return torch.cat([autoencoder.encode(to_model_range(images_uint8[i:i + batch_size]).to(device))[1].cpu()
                      for i in range(0, len(images_uint8), batch_size)])


@torch.no_grad()
def reconstruct(autoencoder: VQAutoencoder, images_uint8: torch.Tensor) -> torch.Tensor:
    """The image VQGAN's reconstructions in [−1, 1] of uint8 images: encoded to codes, decoded."""
    codes = encode_images(autoencoder, images_uint8).to(model_device(autoencoder))
    return autoencoder.decode_indices(codes).clamp(-1, 1).cpu()


@torch.no_grad()
def encode_maps(autoencoder: VQAutoencoder, maps: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Code grids (N, h, w) of segmentation maps (N, 4h, 4w); the encoder is convolutional, so a map
    wider than the training window gives a wider grid."""
    device = model_device(autoencoder)
    return torch.cat([autoencoder.encode(one_hot_maps(maps[i:i + batch_size]).to(device))[1].cpu()
                      for i in range(0, len(maps), batch_size)])


@torch.no_grad()
def decode_maps(autoencoder: VQAutoencoder, codes: torch.Tensor) -> torch.Tensor:
    """Code grids (N, h, w) → segmentation maps (N, 4h, 4w): the most likely class of each pixel."""
    return autoencoder.decode_indices(codes.to(model_device(autoencoder))).argmax(1).cpu()


@torch.no_grad()
def map_pixel_accuracy(autoencoder: VQAutoencoder, maps: torch.Tensor) -> dict:
    """How faithfully the map autoencoder keeps a map: the share of pixels decoded to their class,
    over all pixels and over object pixels only (the background is most of every map), each with a
    bootstrap interval over the maps."""
    decoded = decode_maps(autoencoder, encode_maps(autoencoder, maps))
    right = (decoded == maps).float()
    objects = maps > 0
    per_object = (right * objects).sum((1, 2)) / objects.sum((1, 2)).clamp(min=1)
    return {"pixels": stats.rounded(stats.interval(right.mean((1, 2)))),
            "object_pixels": stats.rounded(stats.interval(per_object))}


# ----------------------------------------------------------------------------- the prior over two codebooks


def prior_config(budget: str, seed: int = 0) -> dict:
    """The transformer that reads a map's 64 codes and predicts the image's 64 (a sequence of 128
    tokens after the start token), trained from ``seed`` on the codes of the training scenes.

    2,000 steps at the standard budget: measured on seed 0 with greedy decoding, 1,000 steps left
    1.36 bits per image code and 0.42 of the pictures showing their map's scene, 2,000 steps 1.08
    bits and 0.61; a cosine learning-rate decay over the same 2,000 steps gave 1.05 bits and 0.58,
    no better, so the rate stays constant."""
    return dict(model="CodePrior with a map", image_codes_from=config_hash(autoencoder_config("image", budget)),
                map_codes_from=config_hash(autoencoder_config("map", budget)), dim=128, layers=3, heads=4,
                dropout=0.0, batch_size=32, lr=1e-3, warmup=100, lr_schedule="constant", seed=seed,
                train_scenes=autoencoder_config("image", budget)["train_scenes"],
                steps=by_budget(quick=30, standard=2000, full=8000, budget=budget))


def build_prior(config: dict, image_codes: int, map_codes: int, grid: int = IMAGE_SIZE // 4) -> CodePrior:
    return CodePrior(image_codes, grid * grid, 0, config["dim"], config["layers"], config["heads"], config["dropout"],
                     constraint_codes=map_codes, constraint_length=grid * grid)


def load_prior(image_autoencoder: VQAutoencoder, map_autoencoder: VQAutoencoder, config: dict,
               device: torch.device | str | None = None):
    """``(prior, info)`` of ``config`` (:func:`prior_config`) over the two autoencoders' codes of the
    training scenes, from the cache or trained now."""
    def train(prior, checkpoint):
        data = training_scenes(config["train_scenes"])
        image_codes = encode_images(image_autoencoder, data.images).flatten(1)
        map_codes = encode_maps(map_autoencoder, shapes.segmentation_maps(data.scenes, IMAGE_SIZE)).flatten(1)
        start = torch.zeros(config["batch_size"], dtype=torch.long)       # no class: the start token

        def batch_fn(step, generator):
            idx = torch.randint(0, len(image_codes), (config["batch_size"],), generator=generator)
            return start, image_codes[idx], map_codes[idx]

        history = fit(prior, lambda m, batch, generator: m.loss(*batch), batch_fn, config["steps"], lr=config["lr"],
                      seed=config["seed"], warmup=config["warmup"], schedule=config["lr_schedule"], checkpoint=checkpoint,
                      desc="training the prior over map and image codes", device=device)
        return {"losses": history["losses"], "steps": history["steps"], "seconds": history["seconds"]}

    return load_or_train(CHAPTER, "prior", config,
                         lambda: build_prior(config, image_autoencoder.num_codes, map_autoencoder.num_codes), train,
                         device=device)


# ----------------------------------------------------------------------------- drawing from maps


# The decoders ``eval 08`` compares: how each next image code is drawn from the prior's p(s_i | r, s_<i).
DECODERS = {"temperature 1, top-k 8": dict(temperature=1.0, top_k=8),
            "temperature 0.5, top-k 8": dict(temperature=0.5, top_k=8),
            "greedy": dict(temperature=0.0, top_k=None)}


def sampling_config(budget: str) -> dict:
    """How the chapter samples (``decoder``, one of :data:`DECODERS`, with its temperature and top-k),
    and how many test scenes (and two-scene canvases) it judges."""
    decoder = "greedy"
    return dict(decoder=decoder, **DECODERS[decoder], seed=0,
                eval_scenes=by_budget(quick=20, standard=300, full=1000, budget=budget),
                canvases=by_budget(quick=4, standard=60, full=200, budget=budget))     # 2 × canvases ≤ eval_scenes


def _start(n: int, device) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.long, device=device)


def bits_per_image_code(prior: CodePrior, image_codes: torch.Tensor, map_codes: torch.Tensor) -> float:
    """The prior's negative log-likelihood of image codes (N, 64) given map codes (N, 64), in bits
    per image code (log₂ K is a uniform guess)."""
    device = model_device(prior)
    return prior.bits_per_code(_start(len(image_codes), device), image_codes.to(device), map_codes.to(device))


def code_accuracy(prior: CodePrior, image_codes: torch.Tensor, map_codes: torch.Tensor) -> torch.Tensor:
    """Teacher-forced accuracy of the prior on image codes (N, 64) given map codes (N, 64), one value
    per scene: the share of image codes it would predict right (its most likely code) after the true
    ones before them (:meth:`~gensynth_course.models.vq.prior.CodePrior.code_accuracy`)."""
    device = model_device(prior)
    return prior.code_accuracy(_start(len(image_codes), device), image_codes.to(device), map_codes.to(device))


@torch.no_grad()
def draw_from_maps(image_autoencoder: VQAutoencoder, map_autoencoder: VQAutoencoder, prior: CodePrior,
                   maps: torch.Tensor, temperature: float = 1.0, top_k: int | None = 8, seed: int = 0,
                   progress: bool = True) -> torch.Tensor:
    """Pictures in [−1, 1] (N, 3, 32, 32) drawn for segmentation maps (N, 32, 32): the maps' codes,
    then image codes from p(s | r) one at a time, decoded by the image VQGAN."""
    if maps.dim() != 3 or maps.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"draw_from_maps takes (N, {IMAGE_SIZE}, {IMAGE_SIZE}) segmentation maps, got "
                         f"{tuple(maps.shape)}; for a larger map use draw_canvas.")
    device = model_device(prior)
    constraint = encode_maps(map_autoencoder, maps).flatten(1).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    codes = prior.generate(_start(len(maps), device), temperature, top_k, generator, progress=progress,
                           constraint=constraint)
    grid = image_autoencoder.grid
    return image_autoencoder.decode_indices(codes.reshape(-1, grid, grid).to(model_device(image_autoencoder))
                                            ).clamp(-1, 1).cpu()


@torch.no_grad()
def draw_canvas(image_autoencoder: VQAutoencoder, map_autoencoder: VQAutoencoder, prior: CodePrior,
                maps: torch.Tensor, temperature: float = 1.0, top_k: int | None = 8, seed: int = 0,
                progress: bool = True) -> torch.Tensor:
    """Pictures (N, 3, H, W) for maps (N, H, W) larger than the training window (H and W multiples
    of 4, at least 32): the sliding window over the map's code grid, each new code predicted from
    the 8×8 window of image codes and of map codes around it (section 3.4)."""
    if maps.dim() != 3 or min(maps.shape[1:]) < IMAGE_SIZE or maps.shape[1] % 4 or maps.shape[2] % 4:
        raise ValueError(f"draw_canvas takes (N, H, W) maps with H and W multiples of 4 and at least {IMAGE_SIZE}, "
                         f"got {tuple(maps.shape)}.")
    device = model_device(prior)
    constraint = encode_maps(map_autoencoder, maps).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    codes = sample_sliding_window(prior, _start(len(maps), device), *constraint.shape[1:],
                                  window=image_autoencoder.grid, temperature=temperature, top_k=top_k,
                                  generator=generator, progress=progress, constraint=constraint)
    return image_autoencoder.decode_indices(codes.to(model_device(image_autoencoder))).clamp(-1, 1).cpu()


def side_by_side(left: list[shapes.Scene], right: list[shapes.Scene]) -> torch.Tensor:
    """Two-scene canvases (N, 32, 64): the map of each left scene beside the map of its right one."""
    return torch.cat([shapes.segmentation_maps(left, IMAGE_SIZE), shapes.segmentation_maps(right, IMAGE_SIZE)], 2)


# ----------------------------------------------------------------------------- judging


def scene_hits(evaluator: AttributeEvaluator, images: torch.Tensor, scenes: list[shapes.Scene]) -> torch.Tensor:
    """1.0 where the attribute evaluator reads exactly the scene's description in the image (the
    layout, and shape, colour and size of every object), else 0.0: one per image."""
    if len(images) != len(scenes):
        raise ValueError(f"{len(images)} images but {len(scenes)} scenes: give one scene per image.")
    seen = shapes.labels_to_descriptions(evaluator.predict(images))
    return torch.tensor([float(s == scene.describe()) for s, scene in zip(seen, scenes)])


def shuffled_order(n: int, seed: int = 0) -> torch.Tensor:
    """A random order of ``n`` items in which no item keeps its place (a derangement), from ``seed``."""
    if n < 2:
        raise ValueError(f"a shuffle that moves every item needs at least 2 items, got {n}.")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        if not (order == torch.arange(n)).any():
            return order


def judge_maps(evaluator: AttributeEvaluator, drawn: torch.Tensor, scenes: list[shapes.Scene]) -> dict:
    """How often pictures drawn from the scenes' maps show the scenes (``hits``), and the control:
    the same judge on the pictures drawn from *another* scene's map, in a shuffled order
    (:func:`shuffled_order`), against each scene (``shuffled``, which counts a hit whenever two
    scenes happen to share a description); each with the accuracy per attribute."""
    labels = shapes.description_labels([s.describe() for s in scenes])
    others = drawn[shuffled_order(len(scenes))]
    return {"hits": scene_hits(evaluator, drawn, scenes), "shuffled": scene_hits(evaluator, others, scenes),
            "attributes": attribute_accuracy(evaluator, drawn, labels),
            "shuffled_attributes": attribute_accuracy(evaluator, others, labels)}


def evaluation_scenes(n: int) -> list[shapes.Scene]:
    """``n`` test scenes (a seed stream no model trains on) whose maps the chapter draws from."""
    return shapes.make_scenes(n, "test", seed=2)


def canvas_scenes(n: int) -> tuple[list[shapes.Scene], list[shapes.Scene]]:
    """The left and right scenes of ``n`` two-scene canvases (the first ``2n`` evaluation scenes)."""
    scenes = evaluation_scenes(2 * n)
    return scenes[0::2], scenes[1::2]


def as_canvas_halves(values: torch.Tensor, n: int) -> torch.Tensor:
    """Per-scene values of the evaluation scenes in the order of the halves of ``n`` canvases (the
    left scenes, then the right ones), to pair a canvas half with the same scene drawn alone."""
    return torch.cat([values[:2 * n][0::2], values[:2 * n][1::2]])


def measure_prior(image_autoencoder, map_autoencoder, prior, evaluator, s: dict, decoders: tuple[str, ...] = (),
                  progress: bool = False) -> dict:
    """One prior measured on :func:`evaluation_scenes` (``s``: :func:`sampling_config`): pictures
    drawn from their maps with the chapter's decoder and judged (:func:`judge_maps`), two-scene
    canvases drawn by the sliding window, each half judged against its scene, the prior's bits per
    image code and teacher-forced code accuracy on the real scenes' codes, and ``decoder_hits``:
    the hits of the pictures drawn with each decoder of ``decoders`` (names of :data:`DECODERS`)."""
    scenes = evaluation_scenes(s["eval_scenes"])
    maps = shapes.segmentation_maps(scenes, IMAGE_SIZE)
    drawn = draw_from_maps(image_autoencoder, map_autoencoder, prior, maps, s["temperature"], s["top_k"], s["seed"],
                           progress=progress)
    left, right = canvas_scenes(s["canvases"])
    canvases = draw_canvas(image_autoencoder, map_autoencoder, prior, side_by_side(left, right), s["temperature"],
                           s["top_k"], s["seed"], progress=progress)
    halves = torch.cat([canvases[..., :IMAGE_SIZE], canvases[..., IMAGE_SIZE:]])
    image_codes = encode_images(image_autoencoder, shapes.render(scenes, IMAGE_SIZE)).flatten(1)
    map_codes = encode_maps(map_autoencoder, maps).flatten(1)
    judged = judge_maps(evaluator, drawn, scenes)
    decoder_hits = {name: judged["hits"] if name == s["decoder"] else scene_hits(evaluator, draw_from_maps(
        image_autoencoder, map_autoencoder, prior, maps, seed=s["seed"], progress=progress, **DECODERS[name]), scenes)
        for name in decoders}
    return {**judged, "canvas_hits": scene_hits(evaluator, halves, left + right), "decoder_hits": decoder_hits,
            "bits_per_code": bits_per_image_code(prior, image_codes, map_codes),
            "code_accuracy": code_accuracy(prior, image_codes, map_codes)}


def cached_study(infos: dict[str, dict]) -> dict | None:
    """The results of the last ``eval 08`` that measured these seed-0 models (their infos, by name:
    ``image``, ``map``, ``prior``), or None."""
    return load_study(CHAPTER, {name: infos[name]["model_id"] for name in ("image", "map", "prior")})


def trainings(budget: str) -> list[Training]:
    """What the notebook trains at ``budget``: the two autoencoders and the prior over their codes
    (its config carries theirs under ``"autoencoders"``, so that a shrunk plan finds the ones it
    trained). The attribute evaluator that judges the pictures is chapter 04's training."""
    def prior(config):
        image, map_ = (load_autoencoder(config["autoencoders"][kind])[0] for kind in ("image", "map"))
        return load_prior(image, map_, {k: v for k, v in config.items() if k != "autoencoders"})

    autoencoders = {kind: autoencoder_config(kind, budget) for kind in ("image", "map")}
    return [*(Training(f"{kind}_autoencoder", config, load_autoencoder) for kind, config in autoencoders.items()),
            Training("prior", dict(prior_config(budget), autoencoders=autoencoders), prior)]


def evaluate(budget: str) -> dict:
    """``python -m gensynth_course eval 08``: the two autoencoders (seed 0) and a prior from every
    seed of :data:`SEEDS`; for each prior, pictures drawn from the maps of the evaluation scenes
    judged by the attribute evaluator, with the chapter's decoder and with every other decoder of
    :data:`DECODERS`, and two-scene canvases drawn by the sliding window.

    ``semantic_map_accuracy`` is the share of pictures that show their map's scene: over the
    seeds (mean and t-interval), and for seed 0 with its bootstrap interval over the scenes, beside
    real images (the judge's ceiling), the image VQGAN's reconstructions (the codes' ceiling) and
    ``shuffled_map_accuracy``, the control: the same judge on pictures drawn from another scene's
    map. ``decoders`` gives each decoder's accuracy over the seeds, and the chapter's decoder minus
    each other one, paired over the scenes (seed 0) and over the seeds. ``teacher_forced_code_accuracy``
    and ``prior_bits_per_code`` diagnose the prior on the real scenes' codes. ``canvas_accuracy`` is
    the same share for the halves of the sliding-window canvases, and ``canvas_minus_single`` its
    paired difference from the same scenes drawn alone (seed 0)."""
    s = sampling_config(budget)
    evaluator, _ = load_attribute_evaluator(evaluator_config(budget))
    image_autoencoder, image_info = load_autoencoder(autoencoder_config("image", budget))
    map_autoencoder, map_info = load_autoencoder(autoencoder_config("map", budget))
    scenes = evaluation_scenes(s["eval_scenes"])
    real = shapes.render(scenes, IMAGE_SIZE)
    reconstructed = reconstruct(image_autoencoder, real)
    runs = []
    for seed in by_budget(quick=SEEDS[:2], standard=SEEDS, budget=budget):
        prior, info = load_prior(image_autoencoder, map_autoencoder, prior_config(budget, seed))
        runs.append({**measure_prior(image_autoencoder, map_autoencoder, prior, evaluator, s, tuple(DECODERS)),
                     "info": info})
    first = runs[0]
    left, right = canvas_scenes(s["canvases"])
    single = as_canvas_halves(first["hits"], len(left))

    def over_seeds(values):
        return stats.rounded(stats.over_seeds([float(v) for v in values]))

    chosen = [r["decoder_hits"][s["decoder"]] for r in runs]
    decoders = {name: {"accuracy": over_seeds(r["decoder_hits"][name].mean() for r in runs),
                       **({} if name == s["decoder"] else {
                           "chosen_minus_this_seed0": stats.rounded(stats.difference(chosen[0],
                                                                                     first["decoder_hits"][name])),
                           "chosen_minus_this_over_seeds": over_seeds(
                               c.mean() - r["decoder_hits"][name].mean() for c, r in zip(chosen, runs))})}
                for name in DECODERS}
    results = {
        "semantic_map_accuracy": over_seeds(r["hits"].mean() for r in runs),
        "semantic_map_accuracy_seed0": stats.rounded(stats.interval(first["hits"])),
        "real_accuracy": stats.rounded(stats.interval(scene_hits(evaluator, real, scenes))),
        "reconstruction_accuracy": stats.rounded(stats.interval(scene_hits(evaluator, reconstructed, scenes))),
        "shuffled_map_accuracy": over_seeds(r["shuffled"].mean() for r in runs),
        "shuffled_map_accuracy_seed0": stats.rounded(stats.interval(first["shuffled"])),
        "above_shuffled_map": stats.rounded(stats.difference(first["hits"], first["shuffled"])),
        "attribute_accuracy": first["attributes"],
        "shuffled_attribute_accuracy": first["shuffled_attributes"],
        "decoder": s["decoder"],
        "decoders": decoders,
        "teacher_forced_code_accuracy": over_seeds(r["code_accuracy"].mean() for r in runs),
        "teacher_forced_code_accuracy_seed0": stats.rounded(stats.interval(first["code_accuracy"])),
        "canvas_accuracy": over_seeds(r["canvas_hits"].mean() for r in runs),
        "canvas_accuracy_seed0": stats.rounded(stats.interval(first["canvas_hits"])),
        "canvas_minus_single": stats.rounded(stats.difference(first["canvas_hits"], single)),
        "map_pixel_accuracy": map_pixel_accuracy(map_autoencoder, shapes.segmentation_maps(scenes, IMAGE_SIZE)),
        "prior_bits_per_code": over_seeds(r["bits_per_code"] for r in runs),
        "uniform_bits_per_code": round(math.log2(image_autoencoder.num_codes), 3),
        "prior_seeds": len(runs),
        "eval_scenes": len(scenes),
        "canvases": len(left),
        "sampler": s["decoder"],
        "train_seconds": {"image_autoencoder": round(image_info["seconds"], 1),
                          "map_autoencoder": round(map_info["seconds"], 1),
                          **{f"prior_seed{seed}": round(r["info"]["seconds"], 1) for seed, r in zip(SEEDS, runs)}},
    }
    save_study(CHAPTER, results, {"image": image_info["model_id"], "map": map_info["model_id"],
                                  "prior": first["info"]["model_id"]})
    return results

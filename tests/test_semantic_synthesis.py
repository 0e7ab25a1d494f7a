"""Chapter 08: the map autoencoder's loss, the judging of pictures against their maps' scenes, wide
maps, and the eval's measurements at the quick budget."""

import json

import pytest
import torch
from torch.nn import functional as F

from gensynth_course.data import shapes
from gensynth_course.experiments import ch08_semantic_synthesis as ch08
from gensynth_course.models.vq.vqgan import VQAutoencoder


def test_one_hot_maps_hold_one_class_per_pixel():
    maps = shapes.segmentation_maps(shapes.make_scenes(5, "all", seed=1))
    onehot = ch08.one_hot_maps(maps)
    assert onehot.shape == (5, ch08.MAP_CLASSES, 32, 32) and torch.equal(onehot.sum(1), torch.ones(5, 32, 32))
    assert torch.equal(onehot.argmax(1), maps)


def test_the_map_loss_is_the_cross_entropy_of_the_classes_plus_the_vq_loss():
    torch.manual_seed(0)
    autoencoder = VQAutoencoder((8, 16), dim=4, num_codes=8, in_channels=ch08.MAP_CLASSES,
                                out_channels=ch08.MAP_CLASSES, image_size=32).eval()
    maps = shapes.segmentation_maps(shapes.make_scenes(3, "train", seed=0))
    loss, terms = ch08.map_loss(autoencoder, maps)
    logits, _, vq = autoencoder(ch08.one_hot_maps(maps))
    logp = logits.log_softmax(1).gather(1, maps[:, None])[:, 0]       # log p(true class) per pixel
    assert loss.item() == pytest.approx((-logp.mean() + vq).item(), rel=1e-5)
    assert terms["rec"] == pytest.approx(F.cross_entropy(logits, maps).item(), rel=1e-6)


class _Reader:
    """A stand-in judge that reads the given scenes' descriptions whatever the images show."""

    def __init__(self, scenes):
        self.labels = shapes.description_labels([s.describe() for s in scenes])

    def predict(self, images):
        return self.labels[: len(images)]


def test_scene_hits_count_pictures_that_show_their_scene():
    scenes = shapes.make_scenes(30, "test", seed=2)
    images = shapes.render(scenes)
    assert torch.equal(ch08.scene_hits(_Reader(scenes), images, scenes), torch.ones(30))
    with pytest.raises(ValueError, match="30 images but 29 scenes"):
        ch08.scene_hits(_Reader(scenes), images, scenes[:29])


def test_the_shuffled_control_moves_every_picture_to_another_scene():
    for n in (2, 3, 17):
        order = ch08.shuffled_order(n, seed=n)
        assert sorted(order.tolist()) == list(range(n)) and not (order == torch.arange(n)).any()
    assert torch.equal(ch08.shuffled_order(17, seed=4), ch08.shuffled_order(17, seed=4))
    with pytest.raises(ValueError, match="at least 2 items, got 1"):
        ch08.shuffled_order(1)
    # A judge that reads each picture's own scene: the real pictures all hit, and the shuffled ones
    # hit exactly where the scene they were drawn from shares its description with the scene judged.
    scenes = shapes.make_scenes(30, "test", seed=2)
    images = shapes.render(scenes)

    class _Judge:
        def predict(self, pictures):
            index = [next(i for i in range(len(images)) if torch.equal(p, images[i])) for p in pictures]
            return shapes.description_labels([scenes[i].describe() for i in index])

    judged = ch08.judge_maps(_Judge(), images, scenes)
    order = ch08.shuffled_order(len(scenes))
    same = torch.tensor([float(scenes[j].describe() == s.describe()) for j, s in zip(order.tolist(), scenes)])
    assert torch.equal(judged["hits"], torch.ones(30)) and torch.equal(judged["shuffled"], same)
    assert set(judged["attributes"]) == set(judged["shuffled_attributes"])


def test_a_wide_map_is_the_two_scenes_maps_side_by_side():
    left, right = ch08.canvas_scenes(3)
    scenes = ch08.evaluation_scenes(6)
    assert left == scenes[0::2] and right == scenes[1::2]
    wide = ch08.side_by_side(left, right)
    assert wide.shape == (3, 32, 64)
    assert torch.equal(wide[..., :32], shapes.segmentation_maps(left)) and torch.equal(
        wide[..., 32:], shapes.segmentation_maps(right))


def test_drawing_refuses_maps_of_the_wrong_size():
    torch.manual_seed(0)
    image = VQAutoencoder((8, 16), dim=4, num_codes=8, in_channels=3, out_channels=3, image_size=32)
    maps = VQAutoencoder((8, 16), dim=4, num_codes=4, in_channels=ch08.MAP_CLASSES, out_channels=ch08.MAP_CLASSES,
                         image_size=32)
    prior = ch08.build_prior(dict(dim=16, layers=1, heads=2, dropout=0.0), 8, 4)
    with pytest.raises(ValueError, match=r"takes \(N, 32, 32\) segmentation maps, got \(2, 32, 64\)"):
        ch08.draw_from_maps(image, maps, prior, torch.zeros(2, 32, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="multiples of 4 and at least 32"):
        ch08.draw_canvas(image, maps, prior, torch.zeros(2, 32, 30, dtype=torch.long))
    wide = ch08.draw_canvas(image, maps, prior, torch.zeros(2, 32, 48, dtype=torch.long), progress=False)
    assert wide.shape == (2, 3, 32, 48) and wide.abs().max() <= 1


def test_eval_08_judges_the_pictures_between_the_shuffled_control_and_the_real_images(quick_evals):
    results, _ = quick_evals.get("08")
    json.dumps(results)                                            # the eval's JSON
    assert results["prior_seeds"] == 2 and len(results["semantic_map_accuracy"]["seeds"]) == 2
    for key in ("semantic_map_accuracy_seed0", "real_accuracy", "shuffled_map_accuracy_seed0", "canvas_accuracy_seed0",
                "reconstruction_accuracy", "teacher_forced_code_accuracy_seed0"):
        figure = results[key]
        assert 0 <= figure["ci_low"] <= figure["value"] <= figure["ci_high"] <= 1, key
    assert results["semantic_map_accuracy"]["seeds"][0] == pytest.approx(results["semantic_map_accuracy_seed0"]["value"])
    assert results["canvas_minus_single"]["n"] == 2 * results["canvases"]
    assert set(results["attribute_accuracy"]) == {*shapes.ATTRIBUTES, "scene"}
    # the notebook finds the study for its own seed-0 models, and not for other ones
    s = ch08.sampling_config("quick")
    assert 2 * s["canvases"] <= s["eval_scenes"]
    image, image_info = ch08.load_autoencoder(ch08.autoencoder_config("image", "quick"))
    maps, map_info = ch08.load_autoencoder(ch08.autoencoder_config("map", "quick"))
    _, prior_info = ch08.load_prior(image, maps, ch08.prior_config("quick"))
    infos = {"image": image_info, "map": map_info, "prior": prior_info}
    assert ch08.cached_study(infos)["semantic_map_accuracy"] == results["semantic_map_accuracy"]
    assert ch08.cached_study({**infos, "prior": {"model_id": "0000000000-0000000000"}}) is None

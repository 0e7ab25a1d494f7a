"""CLIP: the symmetric InfoNCE loss against hand-computed values, its minimum at aligned pairs, the
clamped temperature, the encoders' contracts, retrieval recall, and small overfit tests for CLIP
and the attribute evaluator."""

import math

import torch

from gensynth_course.data import shapes
from gensynth_course.data.fashion_mnist import to_model_range
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.evaluation.attribute_evaluator import AttributeEvaluator, as_evaluator_input
from gensynth_course.evaluation.evaluator_clip import same_description
from gensynth_course.evaluation.metrics import hits_at_k, recall_at_k
from gensynth_course.experiments.shapes_clip import ONE_OBJECT
from gensynth_course.models.contrastive.clip import INIT_LOGIT_SCALE, contrastive_loss, make_clip


def test_infonce_matches_hand_computation():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    # image→text, row by row: −log softmax of the diagonal entry
    rows = math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-3))
    # text→image, column by column: [2, 0] and [1, 3]
    cols = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-2))
    assert math.isclose(contrastive_loss(logits).item(), (rows / 2 + cols / 2) / 2, rel_tol=1e-6)
    assert math.isclose(contrastive_loss(torch.zeros(5, 5)).item(), math.log(5), rel_tol=1e-6)


def test_infonce_is_smallest_for_aligned_pairs():
    torch.manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    aligned = contrastive_loss(20 * images @ images.T)
    for _ in range(20):
        shuffled = images[torch.randperm(8)]
        if not torch.equal(shuffled, images):
            assert contrastive_loss(20 * images @ shuffled.T) > aligned
    # the bound I(X; Y) ≥ log N − L is at its largest, log N, only as L → 0
    orthogonal = torch.eye(8)
    assert contrastive_loss(100 * orthogonal @ orthogonal.T).item() < 1e-3


def tiny_clip(image="conv", causal=True, pool="eos"):
    torch.manual_seed(0)
    return make_clip(len(Tokenizer()), image=image, channels=(8, 16), image_width=32, image_layers=1,
                     text_width=32, text_layers=1, heads=2, embed_dim=16, causal=causal, pool=pool)


def test_logit_scale_starts_at_one_over_007_and_is_clamped_at_100():
    model = tiny_clip()
    assert math.isclose(model.scale().item(), 1 / 0.07, rel_tol=1e-5)
    assert math.isclose(model.logit_scale.item(), INIT_LOGIT_SCALE, rel_tol=1e-6)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert math.isclose(model.scale().item(), 100.0, rel_tol=1e-5)
    model.logit_scale.grad = None
    model.scale().backward()
    assert model.logit_scale.grad.item() == 0.0        # past the clamp the temperature stops moving


def test_encoders_shapes_and_padding_invariance():
    tok = Tokenizer()
    data = shapes.load_shapes("test", 6, seed=0)
    texts = shapes.captions(data.scenes, seed=0)
    ids, mask = tok.encode(texts)
    for image, causal, pool in (("conv", True, "eos"), ("vit", False, "mean")):
        model = tiny_clip(image, causal, pool).eval()
        x = to_model_range(data.images)
        assert model.encode_image(x).shape == (6, 16)
        z = model.encode_text(ids, normalize=True)
        assert z.shape == (6, 16) and torch.allclose(z.norm(dim=1), torch.ones(6))
        assert model(x, ids, mask).shape == (6, 6)
        # what a caption means does not depend on how much padding follows it
        longer, longer_mask = Tokenizer(context_length=24).encode(texts)
        long_model = tiny_clip(image, causal, pool).eval()
        long_model.text.position = torch.nn.Parameter(
            torch.cat([model.text.position, torch.zeros(8, model.text.width)]))
        long_model.load_state_dict({k: v for k, v in model.state_dict().items() if k != "text.position"}, strict=False)
        assert torch.allclose(long_model.encode_text(longer, longer_mask), model.encode_text(ids, mask), atol=1e-5)


def test_recall_at_k_on_a_known_matrix():
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.5]])
    relevant = torch.eye(3, dtype=torch.bool)
    assert math.isclose(recall_at_k(similarity, relevant, 1), 1 / 3)     # only row 0 ranks itself first
    assert math.isclose(recall_at_k(similarity, relevant, 2), 2 / 3)
    assert hits_at_k(similarity, relevant, 2).tolist() == [True, True, False]   # row 2 ranks 0 and 1 above itself
    assert recall_at_k(similarity, relevant, 3) == 1.0
    assert same_description(ONE_OBJECT[:2], ONE_OBJECT[:2]).equal(torch.eye(2, dtype=torch.bool))


def test_clip_overfits_a_few_pairs():
    tok = Tokenizer()
    data = shapes.load_shapes("train", 16, seed=0)
    ids, mask = tok.encode(shapes.captions(data.scenes, seed=0))
    x = to_model_range(data.images)
    model = tiny_clip()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = contrastive_loss(model(x, ids, mask))
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 2.0 and loss.item() < 0.1
    with torch.no_grad():
        assert (model(x, ids, mask).argmax(1) == torch.arange(16)).all()


def test_attribute_evaluator_overfits_a_few_scenes():
    torch.manual_seed(0)
    data = shapes.load_shapes("all", 32, seed=0)
    model = AttributeEvaluator(channels=(8, 16, 16), hidden=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = as_evaluator_input(data.images)
    for _ in range(120):
        model.train()
        loss = model.loss(x, data.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    assert torch.equal(model.predict(data.images).masked_fill(data.labels < 0, -1), data.labels)
    assert as_evaluator_input(shapes.render(data.scenes[:2], size=64)).shape == (2, 3, 32, 32)


def test_chapter_04_per_item_hits_add_up_to_its_published_measures():
    """The eval's intervals are bootstrapped over per-query and per-object hits; their means must be
    the retrieval and zero-shot figures the chapter prints."""
    from gensynth_course.evaluation.evaluator_clip import build_clip, clip_config
    from gensynth_course.experiments import ch04_clip

    torch.manual_seed(0)
    config = clip_config("quick")
    model = build_clip(config).eval()
    tokenizer = Tokenizer(context_length=config["context_length"])
    data = shapes.load_shapes("test", 60, seed=0)
    captions = shapes.captions(data.scenes, seed=1)
    hits = ch04_clip.retrieval_hits(model, tokenizer, data, captions, candidates=25)
    assert {key: len(hit) for key, hit in hits.items()} == dict.fromkeys(("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"), 50)
    assert ch04_clip.retrieval(model, tokenizer, data, captions, candidates=25) == {
        key: round(float(hit.mean()), 4) for key, hit in hits.items()}
    assert all((hits[f"{d}_r5"] >= hits[f"{d}_r1"]).all() for d in ("i2t", "t2i"))   # a top-1 hit is a top-5 hit
    per_object = ch04_clip.zero_shot_hits(model, data)
    assert {name: round(float(hit.mean()), 4) for name, hit in per_object.items()} == \
        ch04_clip.zero_shot_accuracy(model, tokenizer, data)

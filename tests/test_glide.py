"""GLIDE's building blocks: text keys and values that act only through attention, empty-caption
dropout, and condition channels that start at zero (inpainting, upsampling)."""

import pytest
import torch

from gensynth_course.data import shapes
from gensynth_course.experiments import ch05_glide
from gensynth_course.data.tokenizer import Tokenizer
from gensynth_course.experiments.ch05_glide import (base_config, best_scales, inpaint, inpainting_condition,
                                                    random_masks, scene_batch_fn, seam, upsampler_condition)
from gensynth_course.models.contrastive.clip import TextTransformer
from gensynth_course.models.contrastive.noisy_clip import CLIPGuidance, NoisyCLIP, NoisyImageEncoder
from gensynth_course.models.diffusion.glide import TextConditionalUNet, drop_captions
from gensynth_course.models.diffusion.guidance import ClassifierFreeGuidance
from gensynth_course.models.diffusion.schedulers import DDIMScheduler, linear_betas
from gensynth_course.models.diffusion.unet import Attention, UNet, add_condition_channels


def test_text_tokens_reach_the_image_only_through_attention():
    torch.manual_seed(0)
    attention = Attention(16, heads=4, context_dim=8)
    x = torch.randn(2, 16, 4, 4)
    tokens = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with_text = attention(x, tokens, mask)
    assert not torch.allclose(with_text, attention(x))                     # the caption is read …
    changed = tokens.clone()
    changed[0, 3:] = torch.randn(2, 8)                                      # … but never its padding
    assert torch.allclose(attention(x, changed, mask), with_text, atol=1e-6)
    # the same layer without its context projection is the ordinary self-attention
    plain = Attention(16, heads=4)
    plain.load_state_dict({k: v for k, v in attention.state_dict().items() if not k.startswith("context")})
    assert torch.allclose(plain(x), attention(x), atol=1e-6)


def test_text_conditional_unet_reads_the_caption():
    tok = Tokenizer()
    torch.manual_seed(0)
    model = TextConditionalUNet(len(tok), in_channels=3, channels=(8, 16), patch=2).eval()
    torch.nn.init.normal_(model.unet.out[2].weight, std=0.1)               # the output starts at zero
    ids, mask = tok.encode(["a big red circle on the left", "a small blue square at the top"])
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    out = model(x, t, ids, mask)
    assert out.shape == x.shape
    swapped = model(x, t, ids.flip(0), mask.flip(0))
    assert not torch.allclose(out, swapped)


def test_caption_tokens_reach_every_attention_level():
    """GLIDE reads the caption's tokens in the attention of every resolution that has it: with the
    middle attention and the pooled caption cut off, the caption must still change the output, and
    only through the levels of ``attention_levels``."""
    torch.manual_seed(0)
    unet = UNet(in_channels=3, channels=(8, 16, 16), patch=2, context_dim=8, attention_levels=(0, 1)).eval()
    torch.nn.init.normal_(unet.out[2].weight, std=0.1)                     # the output starts at zero
    assert sum(isinstance(layer, Attention) for layer in [*unet.down, *unet.up]) == 2 + 2 * 2   # 1 block down, 2 up
    torch.nn.init.zeros_(unet.mid_attn.context_kv.weight)
    torch.nn.init.zeros_(unet.mid_attn.context_kv.bias)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    tokens, mask = torch.randn(2, 4, 8), torch.ones(2, 4, dtype=torch.bool)
    out = unet(x, t, tokens=tokens, token_mask=mask)
    assert out.shape == x.shape
    assert not torch.allclose(out, unet(x, t, tokens=torch.randn(2, 4, 8), token_mask=mask))
    # the default, attention in the middle only, keeps the layers (and weights) of earlier chapters
    assert not any(isinstance(layer, Attention) for layer in UNet(channels=(8, 16)).down)
    with pytest.raises(ValueError, match="attention_levels"):
        UNet(channels=(8, 16), attention_levels=(2,))


def test_the_order_curriculum_names_the_upper_or_left_object_first_early_on():
    """For the first ``order_curriculum`` share of the steps every two-object caption says "A above
    B" or "A left of B"; after it, either object comes first, as in the judged captions."""
    config = dict(base_config("quick"), steps=10, batch_size=64)
    batch = scene_batch_fn(config)
    tok = Tokenizer(context_length=config["context_length"])

    def subject_first_shares(step):
        texts = [f" {t} " for t in tok.decode(batch(step, torch.Generator().manual_seed(step))[1])]
        phrases = {r: [f" {p} " for p in shapes.RELATION_PHRASES[r]] for r in shapes.RELATIONS}
        upper_or_left_first = phrases["above"] + phrases["left of"]
        two = [t for t in texts if any(p in t for ps in phrases.values() for p in ps)]
        return len(two), sum(any(w in t for w in upper_or_left_first) for t in two) / len(two)

    n, early = subject_first_shares(int(config["steps"] * config["order_curriculum"]) - 1)
    assert n > 10 and early == 1.0
    n, late = subject_first_shares(config["steps"] - 1)
    assert n > 10 and 0.2 < late < 0.8


def test_empty_caption_dropout_rate():
    tok = Tokenizer()
    ids, _ = tok.encode(shapes.captions(shapes.make_scenes(20_000, "train", 0), seed=0))
    out = drop_captions(ids, 0.2, tok.bos_id, tok.eos_id, tok.pad_id, torch.Generator().manual_seed(0))
    empty = (out[:, 0] == tok.bos_id) & (out[:, 1] == tok.eos_id) & (out[:, 2:] == tok.pad_id).all(1)
    assert abs(empty.double().mean().item() - 0.2) < 0.01
    assert torch.equal(out[~empty], ids[~empty])
    assert tok.decode(out[empty][:1]) == [""]


def test_zero_initialised_condition_channels_leave_the_output_unchanged():
    torch.manual_seed(0)
    for patch in (1, 2):
        model = UNet(in_channels=3, channels=(8, 16), patch=patch).eval()
        torch.nn.init.normal_(model.out[2].weight, std=0.1)
        x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 700])
        before = model(x, t)
        add_condition_channels(model, 4)                                   # masked image (3) + mask (1)
        after = model(x, t, cond=torch.randn(2, 4, 16, 16))
        assert model.cond_channels == 4 and torch.allclose(before, after, atol=1e-6)


def test_upsampler_takes_the_upsampled_low_resolution_image():
    torch.manual_seed(0)
    upsampler = UNet(in_channels=3, channels=(8, 16), patch=2, cond_channels=3).eval()
    low = torch.rand(2, 3, 16, 16) * 2 - 1
    cond = upsampler_condition(low, 32)
    assert cond.shape == (2, 3, 32, 32)
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(upsampler_condition(flat, 32), torch.full((1, 3, 32, 32), 0.3))   # no new content
    assert upsampler(torch.randn(2, 3, 32, 32), torch.tensor([1, 2]), cond=cond).shape == (2, 3, 32, 32)
    try:
        upsampler(torch.randn(2, 3, 32, 32), torch.tensor([1, 2]))
    except ValueError as error:
        assert "3 channels" in str(error)
    else:
        raise AssertionError("an upsampler without its condition image must refuse")


def test_classifier_free_guidance_on_captions_uses_the_empty_caption():
    tok = Tokenizer()
    torch.manual_seed(0)
    model = TextConditionalUNet(len(tok), in_channels=3, channels=(8, 16), patch=2).eval()
    torch.nn.init.normal_(model.unet.out[2].weight, std=0.1)
    ids, _ = tok.encode(["a big red circle on the left", "a small blue square at the top"])
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 500])
    empty = model.null_condition(ids)
    assert tok.decode(empty) == ["", ""]
    with torch.no_grad():
        cond, uncond = model(x, t, ids), model(x, t, empty)
        assert torch.allclose(ClassifierFreeGuidance(model, 1.0)(x, t, ids), cond, atol=1e-5)
        assert torch.allclose(ClassifierFreeGuidance(model, 0.0)(x, t, ids), uncond, atol=1e-5)
        assert torch.allclose(ClassifierFreeGuidance(model, 4.0)(x, t, ids), uncond + 4 * (cond - uncond), atol=1e-5)


def test_clip_guidance_raises_the_guiding_clips_similarity_after_one_step():
    """One DDIM step with CLIP guidance ends where the guiding CLIP scores the caption higher than
    after the same step without guidance (a toy denoiser and an untrained CLIP: the claim is about
    the direction of the gradient, not about what the networks know)."""
    tok = Tokenizer()
    torch.manual_seed(0)
    clip = NoisyCLIP(NoisyImageEncoder(channels=(8, 16), width=32, patch=2, image_size=16),
                     TextTransformer(len(tok), 16, width=32, layers=1), embed_dim=16).eval()

    def denoiser(x, t, ids):                     # a fixed toy ε-model that ignores the caption
        return 0.5 * x

    scheduler = DDIMScheduler(linear_betas())
    scheduler.set_timesteps(10)
    ids, _ = tok.encode(["a big red circle on the left", "a small blue square at the top"])
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = int(scheduler.timesteps[1])
    t_prev = int(scheduler.timesteps[2])
    tt = torch.full((2,), t)

    def similarity_after_step(scale):
        guided = CLIPGuidance(denoiser, clip, scale)
        x_prev = scheduler.step(guided(x, tt, ids), t, x, gradient=guided.guidance_gradient(x, tt, ids))
        with torch.no_grad():
            return clip.similarity(x_prev, torch.full((2,), t_prev), ids)

    unguided, guided = similarity_after_step(0.0), similarity_after_step(20.0)
    assert (guided > unguided).all()


def test_random_masks_and_the_inpainting_condition():
    masks = random_masks(200, 32, torch.Generator().manual_seed(0))
    assert masks.shape == (200, 1, 32, 32) and set(masks.unique().tolist()) == {0.0, 1.0}
    covered = masks.mean((1, 2, 3))
    assert covered.min() >= (8 * 8) / 32**2 - 1e-6 and covered.max() <= (24 * 24) / 32**2 + 1e-6
    assert (covered == 0.5).float().mean() > 0.3                        # the half-image masks of an edit
    images = torch.rand(200, 3, 32, 32) * 2 - 1
    cond = inpainting_condition(images, masks)
    assert cond.shape == (200, 4, 32, 32)
    assert torch.equal(cond[:, 3:], masks)
    assert (cond[:, :3] * masks == 0).all()                             # nothing of the region to fill leaks in
    assert torch.equal(cond[:, :3] * (1 - masks), images * (1 - masks))


def test_inpainting_keeps_the_known_region():
    tok = Tokenizer()
    torch.manual_seed(0)
    model = TextConditionalUNet(len(tok), in_channels=3, channels=(8, 16), patch=2).eval()
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    masks = torch.zeros(2, 1, 16, 16)
    masks[..., :8] = 1
    captions = ["a red square left of a blue circle", "a small cyan cross on the left"]
    out = inpaint(model, images, masks, captions, scale=2.0, steps=3, naive=True, progress=False)
    assert torch.equal(out[..., 8:], images[..., 8:])
    add_condition_channels(model.unet, 4)
    out = inpaint(model, images, masks, captions, scale=2.0, steps=3, progress=False)
    assert torch.equal(out[..., 8:], images[..., 8:])


def test_clip_guidance_at_zero_samples_what_cfg_at_one_does_and_the_sweep_draws_it_once(monkeypatch):
    """CLIP guidance at s = 0 is the conditional model, as CFG at s = 1 is: from the same noise the
    two samplers end at the same images (up to rounding), so the sweep reuses CFG's row."""
    tok = Tokenizer()
    torch.manual_seed(0)
    model = TextConditionalUNet(len(tok), in_channels=3, channels=(8, 16), patch=2).eval()
    torch.nn.init.normal_(model.unet.out[2].weight, std=0.1)
    clip = NoisyCLIP(NoisyImageEncoder(channels=(8, 16), width=32, patch=2, image_size=32),
                     TextTransformer(len(tok), 16, width=32, layers=1), embed_dim=16).eval()
    captions = ["a big red circle on the left", "a small blue square at the top"]
    cfg = ch05_glide.generate(model, captions, "cfg", 1.0, steps=5, progress=False)
    clip_zero = ch05_glide.generate(model, captions, "clip", 0.0, clip, steps=5, progress=False)
    assert torch.allclose(cfg, clip_zero, atol=1e-4)

    drawn = []
    monkeypatch.setattr(ch05_glide, "load_base", lambda config: ("base", {}))
    monkeypatch.setattr(ch05_glide, "load_noisy_clip", lambda config: ("clip", {}))
    monkeypatch.setattr(ch05_glide, "generate", lambda model, prompts, method, scale, *rest: drawn.append((method, scale))
                        or (method, scale))

    class StubJudge:
        def prompts(self):
            return captions

        def __call__(self, images):
            return {"drawn": images}

    m = dict(ch05_glide.measure_config("quick"), sampling=dict(ch05_glide.sampling_config("quick"),
                                                                 cfg_scales=[0.0, 1.0, 3.0], clip_scales=[0.0, 5.0]))
    sweep = ch05_glide.guidance_sweep(m, StubJudge(), progress=False)
    assert drawn == [("cfg", 0.0), ("cfg", 1.0), ("cfg", 3.0), ("clip", 5.0)]
    assert [row["drawn"] for row in sweep["clip"]] == [("cfg", 1.0), ("clip", 5.0)]


def test_the_notebook_samples_its_short_sweep_only_and_eval_s_full_sweep_contains_it(monkeypatch):
    """The notebook's scales are sampled and nothing else; at every budget they include the unguided
    model (CFG at s = 1, CLIP guidance at s = 0) and lie inside the full sweep of ``eval 05``, so
    its plot extends the notebook's. A malformed set of scales is refused in one line."""
    drawn = []
    monkeypatch.setattr(ch05_glide, "load_base", lambda config: ("base", {}))
    monkeypatch.setattr(ch05_glide, "load_noisy_clip", lambda config: ("clip", {}))
    monkeypatch.setattr(ch05_glide, "generate", lambda model, prompts, method, scale, *rest: drawn.append((method, scale))
                        or {"caption_accuracy": scale, "per_caption": [scale]})

    class StubJudge:
        def prompts(self):
            return ["a red circle"]

        def __call__(self, images):
            return images

    m = ch05_glide.measure_config("quick")
    sweep = ch05_glide.guidance_sweep(m, StubJudge(), progress=False, scales={"cfg": [1.0, 4.0], "clip": [0.0, 7.0]})
    assert drawn == [("cfg", 1.0), ("cfg", 4.0), ("clip", 7.0)]
    assert (sweep["cfg_scales"], sweep["clip_scales"]) == ([1.0, 4.0], [0.0, 7.0])
    assert ch05_glide.sweep_table(sweep) == {"cfg": {"caption_accuracy": [1.0, 4.0]},
                                             "clip": {"caption_accuracy": [1.0, 7.0]}}
    for bad in ({"cfg": [1.0]}, {"cfg": [], "clip": [0.0]}):
        with pytest.raises(ValueError, match="scales must give both methods"):
            ch05_glide.guidance_sweep(m, StubJudge(), progress=False, scales=bad)
    for budget in ("quick", "standard", "full"):
        config = ch05_glide.sampling_config(budget)
        short = config["notebook_scales"]
        assert 1.0 in short["cfg"] and 0.0 in short["clip"]
        assert set(short["cfg"]) <= set(config["cfg_scales"]) and set(short["clip"]) <= set(config["clip_scales"])
        assert any(s != 1.0 for s in short["cfg"]) and any(s > 0 for s in short["clip"])


def test_a_guidance_scale_is_chosen_on_validation_with_guidance_on_and_ties_to_the_smaller():
    def rows(accuracies):
        return [{"caption_accuracy": a} for a in accuracies]
    validation = {"cfg_scales": [0.0, 1.0, 2.0, 3.0], "cfg": rows([0.1, 0.9, 0.5, 0.5]),
                  "clip_scales": [0.0, 1.0, 3.0], "clip": rows([0.9, 0.2, 0.4])}
    # s = 1 (CFG) and s = 0 (CLIP guidance) are the unguided model: never "best" guidance
    assert best_scales(validation) == {"cfg": 2.0, "clip": 3.0}


def test_guidance_over_seeds_measures_every_base_seed_at_the_chosen_scale(monkeypatch):
    """Each training seed's base model is sampled at the chosen scale and unguided; the first seed's
    rows come from the sweep, and each group's figures are averaged over the seeds."""
    drawn = []
    monkeypatch.setattr(ch05_glide, "load_base", lambda config: (config["seed"], {}))

    def generate(model, prompts, method, scale, clip, steps, seed, progress):
        drawn.append((model, method, scale))
        return model, scale

    class StubJudge:
        sets = ("one_object", "two_object")

        def prompts(self):
            return ["a red circle"]

        def __call__(self, images):
            seed, scale = images                   # accuracy 0.5 + 0.1·seed guided, 0.1·seed unguided
            value = 0.1 * seed + (0.5 if scale != 1.0 else 0.0)
            return {"caption_accuracy_one_object": value, "caption_accuracy_two_object": value / 2,
                    "swapped_two_object": 0.1}

    monkeypatch.setattr(ch05_glide, "generate", generate)
    m = ch05_glide.measure_config("standard")
    first = {"cfg": StubJudge()((0, 3.0)), "unguided": StubJudge()((0, 1.0))}
    out = ch05_glide.guidance_over_seeds(m, StubJudge(), 3.0, first, progress=False)
    assert out["base_seeds"] == [0, 1, 2]
    assert drawn == [(1, "cfg", 3.0), (1, "cfg", 1.0), (2, "cfg", 3.0), (2, "cfg", 1.0)]
    assert out["cfg_caption_accuracy_over_seeds"]["seeds"] == pytest.approx([0.5, 0.6, 0.7])
    assert out["cfg_caption_accuracy_over_seeds"]["mean"] == pytest.approx(0.6)
    assert out["cfg_caption_accuracy_over_seeds"]["ci_low"] < 0.6 < out["cfg_caption_accuracy_over_seeds"]["ci_high"]
    assert out["unguided_two_object_accuracy_over_seeds"]["mean"] == pytest.approx(0.05)
    assert out["cfg_minus_unguided_caption_accuracy_over_seeds"]["seeds"] == pytest.approx([0.5, 0.5, 0.5])
    assert out["cfg_swapped_over_seeds"]["mean"] == pytest.approx(0.1)


def test_the_seam_is_measured_per_image_at_the_masks_edge():
    images = torch.zeros(2, 3, 32, 32)
    images[1, :, :, 16:] = 1.0                     # a step of 1 across the edge: 0.5 in [0, 1] units
    assert torch.allclose(seam(images), torch.tensor([0.0, 0.5]))

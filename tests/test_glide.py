"""GLIDE's building blocks: text keys and values that act only through attention, empty-caption
dropout, and condition channels that start at zero (inpainting, upsampling)."""

import torch

from gensynth_course import shapes
from gensynth_course.glide import TextConditionalUNet, drop_captions
from gensynth_course.tokenizer import Tokenizer
from gensynth_course.unet import Attention, UNet, add_condition_channels


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
    cond = torch.nn.functional.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    assert upsampler(torch.randn(2, 3, 32, 32), torch.tensor([1, 2]), cond=cond).shape == (2, 3, 32, 32)
    try:
        upsampler(torch.randn(2, 3, 32, 32), torch.tensor([1, 2]))
    except ValueError as error:
        assert "3 channels" in str(error)
    else:
        raise AssertionError("an upsampler without its condition image must refuse")

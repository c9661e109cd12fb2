"""Hugging Face image classifiers from a local folder (``load_model("hf:PATH")``, ``--model hf:PATH``), on a
tiny random-weight ViT the tests build and save: loading, the attention found in the Hugging Face modules,
the CLI, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import salience  # noqa: E402
from salience.attribution.transformer import attention_layers, rollout_matrix  # noqa: E402
from salience.cli import main  # noqa: E402
from salience.errors import InputError, ModelError  # noqa: E402


def _tiny_vit(**extra):
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=2,
                                 hidden_size=16, intermediate_size=32, num_labels=3,
                                 id2label={0: "cat", 1: "dog", 2: "cup"}, label2id={"cat": 0, "dog": 1, "cup": 2},
                                 **extra)
    return transformers.ViTForImageClassification(cfg).eval()


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    _tiny_vit().save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        '{"size": {"height": 32, "width": 32}, "image_mean": [0.4, 0.5, 0.6], "image_std": [0.2, 0.25, 0.3]}')
    return folder


def test_hf_folder_loads_as_a_classifier_with_its_labels_and_processor(vit_folder):
    """The wrapped model gives the Hugging Face model's logits; names from id2label; the processor's size,
    mean and std."""
    lm = salience.load_model(f"hf:{vit_folder}")
    assert lm.name == f"hf:{vit_folder}" and lm.class_names == ["cat", "dog", "cup"]
    img = np.random.default_rng(1).random((40, 56, 3)).astype(np.float32)
    x = lm.preprocess(img)
    assert tuple(x.shape) == (1, 3, 32, 32)
    raw = torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=(32, 32),
                                          mode="bilinear", align_corners=False, antialias=True)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (raw - mean) / std)
    ref = transformers.ViTForImageClassification.from_pretrained(str(vit_folder)).eval()
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x), ref(pixel_values=x).logits, rtol=1e-5, atol=1e-6)
    assert [n for n, _ in attention_layers(lm.model)] == ["hf.vit.layers.0.attention", "hf.vit.layers.1.attention"]


def test_attention_rollout_reads_the_probabilities_the_model_itself_reports(vit_folder):
    """attention-rollout on the hf: model equals the rollout of the attentions that the Hugging Face model
    returns with output_attentions=True; every family of methods runs on it."""
    lm = salience.load_model(f"hf:{vit_folder}")
    x = lm.preprocess(np.random.default_rng(2).random((32, 32, 3)).astype(np.float32))
    e = salience.explain(lm, x, "attention-rollout")
    with torch.no_grad():
        att = lm.model.hf(pixel_values=x, output_attentions=True).attentions
    r = rollout_matrix(list(att))[:, 0, 1:].reshape(1, 4, 4)
    torch.testing.assert_close(e.cam / e.cam.amax(), r / r.amax(), rtol=1e-5, atol=1e-6)
    for method in ("attention-relevance", "transformer-attribution", "gradient", "integrated-gradients", "rise"):
        m = salience.saliency_map(np.random.default_rng(3).random((48, 40, 3)).astype(np.float32), method,
                                  model=lm, **({"n": 16} if method == "rise" else {}))
        assert m.shape == (48, 40) and np.isfinite(m).all()
    a = salience.explain(lm, x, "gradient", target=0).maps
    b = salience.explain(lm, x, "gradient", target=2).maps
    assert (a - b).abs().mean() > 1e-4  # the target matters


def test_cli_explains_an_hf_model(vit_folder, tmp_path, capsys):
    """`salience explain IMG --model hf:PATH` writes the maps and names the model's classes; `salience batch`
    takes the same model."""
    src = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(4).random((30, 44, 3)) * 255).astype(np.uint8)).save(src)
    out = tmp_path / "out"
    code = main(["explain", str(src), "--model", f"hf:{vit_folder}", "--method", "attention-rollout,gradient",
                 "--out", str(out)])
    text = capsys.readouterr()
    assert code == 0, text.err
    for m in ("attention-rollout", "gradient"):
        assert np.asarray(Image.open(out / f"x_{m}.png")).shape == (30, 44)
    assert any(name in text.out for name in ("cat", "dog", "cup"))
    maps = tmp_path / "maps"
    assert main(["batch", str(tmp_path), "--method", "attention-rollout", "--model", f"hf:{vit_folder}",
                 "--out", str(maps)]) == 0  # a batch run over the folder with the same model
    assert len(list(maps.glob("x_attention-rollout@*.png"))) == 1


def test_hf_errors_say_what_to_do(tmp_path, vit_folder):
    """A missing folder, a folder without config.json, weights given, and a model run with an attention that
    returns no probabilities: each a clear error."""
    with pytest.raises(InputError, match="does not exist"):
        salience.load_model(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(InputError, match="config.json"):
        salience.load_model(f"hf:{tmp_path}")
    with pytest.raises(InputError, match="weights"):
        salience.load_model(f"hf:{vit_folder}", weights="random")
    sdpa = transformers.ViTForImageClassification.from_pretrained(str(vit_folder), attn_implementation="sdpa")
    from salience.attribution.hf import HFLogits

    with pytest.raises(ModelError, match="eager"):
        salience.explain(HFLogits(sdpa).eval(), torch.rand(1, 3, 32, 32), "attention-rollout")


def test_transformer_attribution_agrees_between_hf_and_torchvision_layouts():
    """The same weights in a Hugging Face ViT and a torchvision VisionTransformer (layer-norm eps and GELU
    matched) give the same logits, the same attention relevances and the same map (issue 15)."""
    import torchvision

    hf = _tiny_vit(layer_norm_eps=1e-6, hidden_act="gelu", attn_implementation="eager")
    tv = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                                              mlp_dim=32, num_classes=3).eval()
    sd = hf.state_dict()
    with torch.no_grad():
        tv.conv_proj.weight.copy_(sd["vit.embeddings.patch_embeddings.projection.weight"])
        tv.conv_proj.bias.copy_(sd["vit.embeddings.patch_embeddings.projection.bias"])
        tv.class_token.copy_(sd["vit.embeddings.cls_token"])
        tv.encoder.pos_embedding.copy_(sd["vit.embeddings.position_embeddings"])
        for i, layer in enumerate(tv.encoder.layers):
            p = f"vit.layers.{i}."
            mha = layer.self_attention
            mha.in_proj_weight.copy_(torch.cat([sd[p + f"attention.{k}_proj.weight"] for k in "qkv"]))
            mha.in_proj_bias.copy_(torch.cat([sd[p + f"attention.{k}_proj.bias"] for k in "qkv"]))
            mha.out_proj.weight.copy_(sd[p + "attention.o_proj.weight"])
            mha.out_proj.bias.copy_(sd[p + "attention.o_proj.bias"])
            for ours, theirs in (("ln_1", "layernorm_before"), ("ln_2", "layernorm_after")):
                getattr(layer, ours).weight.copy_(sd[p + theirs + ".weight"])
                getattr(layer, ours).bias.copy_(sd[p + theirs + ".bias"])
            for ours, theirs in ((0, "fc1"), (3, "fc2")):
                layer.mlp[ours].weight.copy_(sd[p + f"mlp.{theirs}.weight"])
                layer.mlp[ours].bias.copy_(sd[p + f"mlp.{theirs}.bias"])
        tv.encoder.ln.weight.copy_(sd["vit.layernorm.weight"])
        tv.encoder.ln.bias.copy_(sd["vit.layernorm.bias"])
        tv.heads.head.weight.copy_(sd["classifier.weight"])
        tv.heads.head.bias.copy_(sd["classifier.bias"])
    from salience.attribution.hf import HFLogits

    wrapped = HFLogits(hf)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(wrapped(x), tv(x), rtol=1e-5, atol=1e-5)
    a = salience.explain(wrapped, x, "transformer-attribution", target=[0, 2])
    b = salience.explain(tv, x, "transformer-attribution", target=[0, 2])
    for ra, rb in zip(a.extras["attention_relevance"], b.extras["attention_relevance"], strict=True):
        assert float((ra - rb).abs().max()) <= 1e-4 * float(rb.abs().max())
    assert float((a.maps - b.maps).abs().max()) < 1e-4

"""vgzoo translate: any image size, files and folders, directions, eval / --no-eval, errors, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import vgzoo
from vgzoo.cli import cli
from vgzoo.errors import DataError, DataNotFoundError, WeightsNotFoundError
from vgzoo.translate import load_translator, pad_to_multiple, read_image, translate, translate_tensor


def tiny_cyclegan():
    torch.manual_seed(0)
    return vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32).eval()


def write_png(path, h, w, mode="RGB"):
    rng = np.random.default_rng(h * 1000 + w)
    shape = (h, w) if mode == "L" else (h, w, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=None).save(path)
    return path


@pytest.mark.parametrize("h, w, multiple", [(37, 50, 4), (3, 5, 128), (1, 6, 4), (64, 64, 64)])
def test_pad_to_multiple_and_crop_back(h, w, multiple):
    x = torch.randn(2, 3, h, w)
    padded, (top, left, hh, ww) = pad_to_multiple(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - h < multiple and padded.shape[-1] - w < multiple
    assert torch.equal(padded[..., top:top + hh, left:left + ww], x)


def test_translate_tensor_any_size():
    model = tiny_cyclegan()
    x = torch.rand(1, 3, 37, 50) * 2 - 1
    with torch.no_grad():
        y = translate_tensor(model.G_AB, x)
        assert y.shape == (1, 3, 37, 50)
        ok = torch.rand(1, 3, 32, 40) * 2 - 1
        assert torch.equal(translate_tensor(model.G_AB, ok), model.G_AB(ok))  # valid sizes are not padded


def test_translate_folder_both_directions(tmp_path):
    model = tiny_cyclegan()
    src = tmp_path / "in"
    src.mkdir()
    write_png(src / "a.png", 37, 50)
    write_png(src / "b.png", 37, 50)
    write_png(src / "c.jpg", 20, 24)
    (src / "notes.txt").write_text("not an image")
    written = translate(model, src, tmp_path / "out", direction="BtoA", batch_size=2, progress=False)
    assert [p.name for p in written] == ["a.png", "b.png", "c.png"]
    assert Image.open(written[0]).size == (50, 37) and Image.open(written[2]).size == (24, 20)
    # the file holds G_BA's output, quantised to 8 bits
    x = read_image(src / "c.jpg", 3)
    with torch.no_grad():
        expect = ((translate_tensor(model.G_BA, x)[0].clamp(-1, 1) + 1) * 127.5).round()
    got = torch.from_numpy(np.array(Image.open(written[2]))).permute(2, 0, 1).float()
    assert (got - expect).abs().max() <= 1
    assert load_translator(model, "AtoB") is model.G_AB and load_translator(model, "BtoA") is model.G_BA


def test_single_file_to_file_and_grayscale(tmp_path):
    torch.manual_seed(0)
    model = vgzoo.create("cyclegan_resnet", ngf=4, ndf=4, n_blocks=1, img_size=32, in_chans=1, out_chans=1)
    src = write_png(tmp_path / "x.png", 13, 17)  # RGB input, converted for a 1-channel generator
    out = translate(model, src, tmp_path / "y.png", progress=False)
    assert out == [tmp_path / "y.png"]
    im = Image.open(out[0])
    assert im.mode == "L" and im.size == (17, 13)


def test_eval_by_default_and_no_eval_keeps_dropout(tmp_path):
    torch.manual_seed(0)
    p2p = vgzoo.create("pix2pix_unet128", ngf=2, ndf=2)
    src = write_png(tmp_path / "x.png", 40, 30)
    a1 = np.asarray(Image.open(translate(p2p, src, tmp_path / "e1.png", progress=False)[0]))
    a2 = np.asarray(Image.open(translate(p2p, src, tmp_path / "e2.png", progress=False)[0]))
    assert np.array_equal(a1, a2)
    torch.manual_seed(1)
    n1 = np.asarray(Image.open(translate(p2p, src, tmp_path / "n1.png", eval_mode=False, progress=False)[0]))
    assert not np.array_equal(a1, n1)
    with pytest.raises(ValueError, match="single generator"):
        translate(p2p, src, tmp_path / "z.png", direction="BtoA", progress=False)


def test_errors(tmp_path):
    model = tiny_cyclegan()
    with pytest.raises(DataNotFoundError, match="does not exist"):
        translate(model, tmp_path / "missing", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="holds no images"):
        translate(model, tmp_path / "empty", tmp_path / "out", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        translate(model, tmp_path / "bad", tmp_path / "out", progress=False)
    (tmp_path / "plain").mkdir()
    with pytest.raises(WeightsNotFoundError, match="config.json"):  # the core's resolver reports it, as everywhere
        load_translator(tmp_path / "plain")


def test_cli_translate_a_saved_model(tmp_path):
    model = tiny_cyclegan()
    vgzoo.save_pretrained(model, tmp_path / "model")
    write_png(tmp_path / "img.png", 21, 30)
    result = CliRunner().invoke(cli, ["translate", str(tmp_path / "model"), str(tmp_path / "img.png"),
                                      str(tmp_path / "out"), "--direction", "BtoA", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "img.png").size == (30, 21)
    bad = CliRunner().invoke(cli, ["translate", str(tmp_path / "model"), str(tmp_path / "img.png"),
                                   str(tmp_path / "out"), "--direction", "sideways"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("name", ["vit_ti16_scratch", "cgan_embed_digits"])
def test_translate_refuses_models_that_do_not_translate(tmp_path, name):
    write_png(tmp_path / "img.png", 16, 16)
    result = CliRunner().invoke(cli, ["translate", name, str(tmp_path / "img.png"), str(tmp_path / "o.png")])
    assert result.exit_code == 1
    assert "this needs a model of task paired_translation or unpaired_translation" in result.output
    assert not (tmp_path / "o.png").exists()


def test_cli_translate_by_name_warns_about_random_weights_in_one_line(tmp_path):
    write_png(tmp_path / "img.png", 8, 8)
    result = CliRunner().invoke(cli, ["translate", "pix2pix_unet128", str(tmp_path / "img.png"),
                                      str(tmp_path / "o.png")])
    assert result.exit_code == 0, result.output
    assert "warning: pix2pix_unet128: the model has random weights" in result.output
    assert "UserWarning" not in result.output


def test_failed_image_write_keeps_the_previous_file(tmp_path, monkeypatch):
    from vgzoo.translate import write_image

    target = tmp_path / "o.png"
    write_image(torch.zeros(3, 4, 4), target)
    before = target.read_bytes()

    def broken_save(self, fp, format=None, **params):
        fp.write(b"half an image")  # save_image hands PIL the open temporary file
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(torch.ones(3, 4, 4), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temporary file left behind


def test_outputs_become_pixels_in_the_calling_thread_and_only_files_are_written_beside_it(tmp_path, monkeypatch):
    """Torch ops started from a writer thread bring up a second team of torch threads competing with the
    generator's; the writers get uint8 pixels and only encode and write."""
    import threading

    import vgzoo.translate as translate_module

    converted_in, saved_in = [], []
    to_uint8, save_image = translate_module.to_uint8, translate_module.save_image

    def recording_to_uint8(y, *args, **kwargs):
        converted_in.append(threading.current_thread())
        return to_uint8(y, *args, **kwargs)

    def recording_save_image(pixels, path):
        saved_in.append((threading.current_thread(), pixels.dtype))
        return save_image(pixels, path)

    monkeypatch.setattr(translate_module, "to_uint8", recording_to_uint8)
    monkeypatch.setattr(translate_module, "save_image", recording_save_image)
    src = tmp_path / "in"
    src.mkdir()
    for name in "abc":
        write_png(src / f"{name}.png", 16, 16)
    written = translate(tiny_cyclegan(), src, tmp_path / "out", progress=False)
    assert len(written) == 3 and len(converted_in) == 3 and len(saved_in) == 3
    assert set(converted_in) == {threading.main_thread()}
    assert all(thread is not threading.main_thread() and dtype == torch.uint8 for thread, dtype in saved_in)


def test_folder_lists_the_same_image_types_as_the_datasets(tmp_path):
    from vgzoo.data.images import IMG_EXTENSIONS
    from vgzoo.translate import list_inputs

    for suffix in IMG_EXTENSIONS:
        (tmp_path / f"x{suffix}").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("no image")
    assert sorted(p.suffix for p in list_inputs(tmp_path)) == sorted(IMG_EXTENSIONS)

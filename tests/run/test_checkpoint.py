"""Loading and saving score models: round trips, both formats, and refusals."""

import json
import pickle
from pathlib import Path

import pytest
import torch

from srlib.run.checkpoint import describe_checkpoint, load_score_model, save_atomically, save_score_model
from srlib.run.config import TrainConfig
from srlib.run.files import TRAIN_FORMAT
from srlib.errors import SrlibError
from srlib.method.unet import ScoreUNet


def small_model(seed):
    torch.manual_seed(seed)
    return ScoreUNet(width=16).eval()


def score(model, seed=0):
    """The model's scores of two fixed images, in the layout load_score_model gives (channels_last on a CPU)."""
    x = torch.randn(2, 3, 32, 24, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.to(memory_format=torch.channels_last)(x, torch.tensor([1e-3, 0.4]))


def test_save_then_load_reproduces_outputs_exactly(tmp_path):
    model = small_model(0)
    path = tmp_path / "weights.pth"
    save_score_model(model, path)
    loaded = load_score_model(path)
    assert isinstance(loaded, ScoreUNet) and loaded.width == 16 and not loaded.training
    convolutions = [p for p in loaded.parameters() if p.dim() == 4]
    assert convolutions and all(p.is_contiguous(memory_format=torch.channels_last) for p in convolutions)
    assert torch.equal(score(loaded), score(model))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pth"]  # no temporary file left


def test_a_plain_torch_save_state_dict_loads_like_the_authors_release(tmp_path):
    model = small_model(1)
    torch.save(model.state_dict(), tmp_path / "bottle.pth")
    assert torch.equal(score(load_score_model(str(tmp_path / "bottle.pth"))), score(model))


def test_a_training_checkpoint_yields_its_ema_weights(tmp_path):
    trained, averaged = small_model(2), small_model(3)
    config = TrainConfig("mvtec", "/data", "brick", width=16).to_dict()
    checkpoint = {"format": TRAIN_FORMAT, "config": config, "model": trained.state_dict(),
                  "ema": averaged.state_dict(), "optimizer": {}, "scheduler": {}, "epoch": 1, "step": 5,
                  "rng": {"torch": torch.get_rng_state()}}
    save_atomically(checkpoint, tmp_path / "last.pt")
    assert torch.equal(score(load_score_model(tmp_path / "last.pt")), score(averaged))


class TouchesAFile:
    """Unpickling this would create ``marker``: the stand-in for malicious code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    payload = {**small_model(0).state_dict(), "extra": TouchesAFile(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(SrlibError, match="refusing to load") as refused:
        load_score_model(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    assert not marker.exists()
    # The payload is real: an unsafe load would have run it.
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_wrong_shapes_and_keys_are_one_clear_error(tmp_path):
    state = small_model(0).state_dict()
    state["up2.conv.double_conv.0.weight"] = torch.zeros(64, 64, 3, 3)
    del state["outc.conv.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(SrlibError) as bad:
        load_score_model(path)
    message = str(bad.value)
    assert "\n" not in message and str(path) in message
    assert "missing keys: outc.conv.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "up2.conv.double_conv.0.weight (64, 64, 3, 3) vs (64, 128, 3, 3)" in message


@pytest.mark.parametrize("content", [b"not a checkpoint", None, "tensor"])
def test_missing_unreadable_or_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "x.pth"
    if content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(SrlibError, match=str(path).replace(".", r"\.")):
        load_score_model(path)


@pytest.mark.parametrize("content, what", [
    (b"", "is empty (0 bytes): its copy or download was cut short; copy it again"),
    (b"hello, this is not a checkpoint\n", "is a text file (it starts 'hello, this is not a checkpoint'), "
                                           "not a file written by torch.save; pass the .pt or .pth file itself"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 123\n",
     "is a Git LFS pointer (the weights were never downloaded: run git lfs pull), not a file written by torch.save; "
     "pass the .pt or .pth file itself"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "is a web page (the download returned HTML), not a file "
                                                          "written by torch.save; pass the .pt or .pth file itself"),
    (bytes([71, 73, 70, 56, 57, 97, 1, 0, 1, 0]), "is not a PyTorch file (it starts with the bytes 47 49 46 38 39 61 01 00), "
                                                  "not a file written by torch.save; pass the .pt or .pth file itself"),
])
def test_a_file_that_is_not_a_checkpoint_is_described(tmp_path, content, what):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(SrlibError) as raised:
        load_score_model(path)
    assert str(raised.value) == f"checkpoint {path} {what}"


def test_a_run_folder_given_as_the_checkpoint_names_the_files_in_it(tmp_path):
    save_score_model(small_model(0), tmp_path / "model.pt")
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(SrlibError) as raised:
        load_score_model(tmp_path)
    assert str(raised.value) == (f"checkpoint {tmp_path} is a folder (it holds checkpoint.pt, model.pt); "
                                 f"pass the checkpoint file itself, e.g. {tmp_path / 'model.pt'}")


def test_a_truncated_checkpoint_is_named_damaged(tmp_path):
    path = tmp_path / "model.pt"
    save_score_model(small_model(0), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SrlibError) as raised:
        load_score_model(path)
    message = str(raised.value)
    assert message.startswith(f"checkpoint {path} is truncated or damaged (") and message.endswith("); copy it again")
    assert "\n" not in message


def test_non_finite_weights_are_refused_before_any_evaluation(tmp_path):
    state = small_model(0).state_dict()
    state["outc.conv.bias"][0] = float("nan")
    state["up1.conv.double_conv.0.weight"][0, 0, 0, 0] = float("inf")
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(SrlibError) as raised:
        load_score_model(tmp_path / "model.pt")
    assert str(raised.value) == (f"{tmp_path / 'model.pt'} holds NaN or infinite weights (up1.conv.double_conv.0.weight, "
                                 "outc.conv.bias): the training that wrote it diverged; use an earlier checkpoint, "
                                 "or train again (with a lower --lr)")


def test_a_bad_configuration_beside_the_weights_is_named(tmp_path):
    save_score_model(small_model(0), tmp_path / "model.pt")
    values = TrainConfig.preset_for("cpu", "mvtec", "/data", "brick").to_dict() | {"image_size": 8}
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(SrlibError) as raised:
        describe_checkpoint(tmp_path / "model.pt")
    assert str(raised.value) == (f"the configuration {tmp_path / 'config.json'} is invalid: image_size must be at least "
                                 "16 (the U-Net halves it four times), got 8; correct it (it holds the settings "
                                 "the model was trained with, which srlib never guesses)")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SrlibError, match=f"cannot read the configuration {tmp_path / 'config.json'}: Expecting"):
        describe_checkpoint(tmp_path / "model.pt")


def test_an_unknown_format_is_named(tmp_path):
    torch.save({"format": "other-v9", "ema": {}}, tmp_path / "x.pt")
    with pytest.raises(SrlibError, match="unknown checkpoint format 'other-v9'"):
        load_score_model(tmp_path / "x.pt")


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "weights.pth"
    save_score_model(small_model(0), path)
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_atomically({"not picklable": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pth"]

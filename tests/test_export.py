"""ONNX export (``superres.inference.export`` and ``superres export``).

Every shipped model exports and onnxruntime matches PyTorch within 1e-4 on random inputs and on
real Set5 crops of two sizes each; every registered architecture (tiny widths, its smallest and
largest scale) exports with dynamic sizes; MATLAB bicubic's exportable form equals ``imresize``;
a graph that froze its example size is refused and leaves no file; the CLI refuses an existing
output and a missing folder with exit code 1 and nothing written.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import tiny_model
from superres.cli import main
from superres.errors import OutputPathError, SuperresError
from superres.imaging import imresize
from superres.imaging.color import rgb2ycbcr
from superres.inference.export import (
    BicubicUpsample,
    OnnxExportError,
    OnnxVerificationError,
    export_onnx,
    verification_inputs,
    verify_onnx,
)
from superres.io.files import current_umask
from superres.io.image import read_image
from superres.models import get_model_spec, list_models, save_weights
from superres.models.catalog import WEIGHTS
from superres.models.descriptor import describe_network
from superres.models.weights import load_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ATOL = 1e-4


def _tiny(name: str, scale: int) -> nn.Module:
    return tiny_model(name, scale=scale).eval()


def _edge_scales(name: str) -> list[int]:
    """The smallest and largest supported scale (1 and 3 for any-scale models)."""
    scales = get_model_spec(name).scales
    return [1, 3] if scales is None else sorted({min(scales), max(scales)})


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


# --- shipped models: random inputs and real images ------------------------------------------------

# srgan-x4 and esrgan-6b-x4 are srresnet-x4's and rrdbnet-6b-x4's graphs with other weights.
SHIPPED = [
    pytest.param(name, marks=pytest.mark.slow) if WEIGHTS.get(name).parent else name
    for name in WEIGHTS
]


class _Exports:
    """Shipped models exported once per module (each takes seconds), by name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.done: dict[str, tuple[nn.Module, Path]] = {}

    def get(self, name: str) -> tuple[nn.Module, Path]:
        if name not in self.done:
            model = load_model(name)
            # verify=False: the tests below run the same check with their own inputs.
            path = export_onnx(model, self.folder / f"{name}.onnx", name=name, verify=False)
            self.done[name] = (model, path)
        return self.done[name]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> _Exports:
    return _Exports(tmp_path_factory.mktemp("onnx"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_pytorch_on_random_inputs(shipped: _Exports, name: str) -> None:
    model, path = shipped.get(name)
    entry = WEIGHTS.get(name)
    # Batch 1 and 2, two sizes (24x32 and 40x28), neither the traced example's.
    worst = verify_onnx(path, model, verification_inputs(model), atol=ATOL)
    print(f"{name}: max |onnx - torch| on random inputs = {worst:.2g}")
    assert worst <= ATOL
    meta = _metadata(path)
    assert meta["model_name"] == name
    assert meta["architecture"] == entry.architecture
    assert meta["scale"] == str(entry.scale)
    assert meta["in_channels"] == str(model.in_channels)
    assert meta["superres_version"]


@pytest.mark.data
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_pytorch_on_a_real_image(
    shipped: _Exports, name: str, data_root: Path
) -> None:
    model, path = shipped.get(name)
    rgb = read_image(data_root / "Set5" / "LR_bicubic_x4" / "butterfly.png").rgb[None]  # 64x64
    image = rgb2ycbcr(rgb, y_only=True) if model.in_channels == 1 else rgb
    crops = [image[..., 4:24, 10:38], image[..., 30:63, 40:57]]  # 20x28 and 33x17
    worst = verify_onnx(path, model, [c.contiguous() for c in crops], atol=ATOL)
    print(f"{name}: max |onnx - torch| on Set5 butterfly crops = {worst:.2g}")
    assert worst <= ATOL


# --- every registered architecture --------------------------------------------------------------

TINY_CASES = [(name, scale) for name in list_models() for scale in _edge_scales(name)]


@pytest.mark.parametrize(("name", "scale"), TINY_CASES)
def test_every_registered_architecture_exports(tmp_path: Path, name: str, scale: int) -> None:
    model = _tiny(name, scale)
    channels = describe_network(model).in_channels
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    assert _files(tmp_path) == [f"{name}.onnx"]  # no temporary file left beside it
    proto = onnx.load(str(path))
    (graph_input,) = proto.graph.input
    (graph_output,) = proto.graph.output
    assert (graph_input.name, graph_output.name) == ("input", "output")
    dims = graph_input.type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    assert dims[1].dim_value == channels
    # A size not used by export_onnx's own check, run straight in onnxruntime.
    # 4 for RRDBNet's unshuffled x1, whose input sides must be multiples of 4.
    multiple = describe_network(model).size_multiple
    h, w = 13 * multiple, 21 * multiple
    x = torch.rand(3, channels, h, w, generator=torch.Generator().manual_seed(2))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == (3, channels, h * scale, w * scale)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


@pytest.mark.slow  # the torch.export-based exporter takes 5-15 s even for tiny models
@pytest.mark.parametrize("name", list_models())
def test_the_dynamo_exporter_also_works(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnxscript")
    model = _tiny(name, 2)
    path = export_onnx(model, tmp_path / "m.onnx", exporter="dynamo")
    assert verify_onnx(path, model, verification_inputs(model, seed=3)) <= ATOL


# --- MATLAB bicubic in exportable form ------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 2, 5), (1, 3, 17, 9)])
def test_bicubic_upsample_equals_imresize(scale: int, shape: tuple[int, ...]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(scale))
    got = BicubicUpsample(scale=scale)(x)
    torch.testing.assert_close(got, imresize(x, scale=float(scale)), rtol=0, atol=1e-6)


def test_bicubic_upsample_rejects_scale_1() -> None:
    with pytest.raises(OnnxExportError, match="scale >= 2"):
        BicubicUpsample(scale=1)


# --- verification and files -----------------------------------------------------------------------


class _FrozenSize(nn.Module):
    """Upscales with numpy-computed weights: a trace freezes them at the example size."""

    def __init__(self) -> None:
        super().__init__()
        self.scale, self.in_channels, self.size_multiple = 2, 3, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=2.0)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the point of the test
def test_a_graph_that_froze_its_size_is_refused_and_not_written(tmp_path: Path) -> None:
    with pytest.raises(OnnxVerificationError, match=r"froze|shape") as info:
        export_onnx(_FrozenSize(), tmp_path / "frozen.onnx")
    assert isinstance(info.value, SuperresError)
    assert _files(tmp_path) == []


def test_verify_onnx_reports_a_mismatch(tmp_path: Path) -> None:
    model = _tiny("srresnet", 2)
    path = export_onnx(model, tmp_path / "m.onnx")
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.conv_first.weight.add_(0.01)  # type: ignore[operator]
    with pytest.raises(OnnxVerificationError, match="differs from PyTorch"):
        verify_onnx(path, other, verification_inputs(model))


def test_export_refuses_an_existing_file_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"keep me")
    model = _tiny("edsr-baseline", 2)
    with pytest.raises(OnnxExportError, match=r"already exists.*--force"):
        export_onnx(model, target)
    assert target.read_bytes() == b"keep me"
    export_onnx(model, target, overwrite=True)
    assert _metadata(target)["architecture"] == "edsr-baseline"
    assert _files(tmp_path) == ["m.onnx"]


def test_export_checks_the_path(tmp_path: Path) -> None:
    model = _tiny("srcnn", 2)
    taken = tmp_path / "taken"
    taken.write_text("a file where the folder should be")
    with pytest.raises(OutputPathError, match="is a file"):
        export_onnx(model, taken / "m.onnx")
    with pytest.raises(OnnxExportError, match=r"does not end in \.onnx"):
        export_onnx(model, tmp_path / "m.onx")
    with pytest.raises(OnnxExportError, match="unknown exporter"):
        export_onnx(model, tmp_path / "m.onnx", exporter="jit")  # type: ignore[arg-type]
    assert _files(tmp_path) == ["taken"]


def test_export_leaves_the_callers_model_alone(tmp_path: Path) -> None:
    model = _tiny("srresnet", 2).train().double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx")
    assert model.training
    assert next(model.parameters()).dtype == torch.float64
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched


def test_a_fixed_size_export(tmp_path: Path) -> None:
    model = _tiny("rrdbnet", 2)
    path = export_onnx(model, tmp_path / "m.onnx", dynamic=False, example_size=(12, 20))
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 12, 20]
    # Written through a temporary file, yet with the permissions a plain open() gives.
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()


# --- the command line -----------------------------------------------------------------------------


def test_cli_exports_a_weights_file(tmp_path: Path) -> None:
    weights = save_weights(_tiny("rrdbnet", 4), tmp_path / "my-rrdb.safetensors")
    out = tmp_path / "my-rrdb.onnx"
    assert main(["export", "--weights", str(weights), "--onnx", str(out), "-q"]) == 0
    meta = _metadata(out)
    assert (meta["model_name"], meta["architecture"], meta["scale"]) == ("my-rrdb", "rrdbnet", "4")
    model = load_model(weights=weights)
    assert verify_onnx(out, model, verification_inputs(model, [(9, 14)])) <= ATOL


def test_cli_exports_bicubic_at_a_scale(tmp_path: Path) -> None:
    out = tmp_path / "bicubic.onnx"
    assert main(["export", "--model", "bicubic", "--scale", "3", "-o", str(out), "-q"]) == 0
    assert _metadata(out)["scale"] == "3"  # -o is --onnx, as -o is upscale's output


def test_cli_refuses_an_existing_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = save_weights(_tiny("srcnn", 2), tmp_path / "w.safetensors")
    out = tmp_path / "out.onnx"
    out.write_bytes(b"old")
    args = ["export", "--weights", str(weights), "--onnx", str(out), "-q"]
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"old"
    assert _files(tmp_path) == ["out.onnx", "w.safetensors"]
    assert main([*args, "--force"]) == 0
    assert _metadata(out)["architecture"] == "srcnn"


def test_cli_refuses_a_file_in_the_way(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    taken = tmp_path / "no"
    taken.write_text("a file where the folder should be")
    assert main(["export", "--model", "srcnn-x4", "--onnx", str(taken / "m.onnx"), "-q"]) == 1
    assert f"'{taken}' is a file" in capsys.readouterr().err
    assert taken.read_text() == "a file where the folder should be"


def test_cli_needs_a_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--onnx", str(tmp_path / "m.onnx"), "-q"]) == 1
    assert "no model given" in capsys.readouterr().err
    assert _files(tmp_path) == []

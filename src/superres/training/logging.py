"""What a training run shows and leaves behind: CSV logs, TensorBoard, a progress bar, PNG plots.

Only rank 0 of a distributed run logs (the trainer decides the rank and gives the other ranks a
:class:`NullLogger`). Everything is written under ``out_dir``::

    train_log.csv         step, time, lr, one column per training value (loss_pix, loss_gan, ...)
    val_log.csv           step, time, one column per validation value (psnr, ssim, loss_pix, ...)
    tensorboard/          SummaryWriter event files: train/*, val/* scalars and samples/* images
    plots/loss.png        training losses (moving average over faint raw values) + validation losses
    plots/gan.png         generator vs discriminator losses (only for runs that log them)
    plots/val_psnr_ssim.png  validation PSNR (left axis, dB) and SSIM (right axis)
    samples/step_XXXXXXXX.png  labelled image grids from :meth:`TrainingLogger.log_images`

CSV columns: new keys may appear in later rows (a GAN stage adding ``loss_d``, an EMA adding
``psnr_ema``): the file is then rewritten atomically with the union of the columns, earlier rows
left empty in the new ones, and a key missing from a row is an empty cell. Every row is flushed
as written, so a run killed with SIGKILL loses at most the row being written. ``time`` is the Unix
time of the row, in seconds.

Resume: with ``start_iter > 0`` the CSV logs keep only their rows with ``step <= start_iter`` (a
run killed after its last checkpoint may have logged beyond it) and TensorBoard hides the events
after ``start_iter``; with ``start_iter == 0`` the CSV logs and plots of an earlier run in
``out_dir`` are replaced and its TensorBoard events hidden (sample grids are overwritten per step).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np
import torch

from superres.training.run_files import (
    CsvLog,
    RunOutputError,
    format_row,
    read_csv_log,
    write_run_file,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

__all__ = [
    "PLOTS",
    "NullLogger",
    "TrainingLogger",
    "plot_logs",
]

_log = logging.getLogger(__name__)

TRAIN_CSV: Final = "train_log.csv"
VAL_CSV: Final = "val_log.csv"
_TRAIN_FIXED: Final = ("step", "time", "lr")
_VAL_FIXED: Final = ("step", "time")
#: The figures :func:`plot_logs` draws under ``out_dir/plots``.
PLOTS: Final = ("loss.png", "gan.png", "val_psnr_ssim.png")


# --- files ----------------------------------------------------------------------------------------


# --- images ---------------------------------------------------------------------------------------


def _to_uint8_hwc(name: str, image: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` (or ``(1, C, H, W)``) in [0, 1], C in {1, 3, 4} -> RGB uint8 ``(H, W, 3)``."""
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"log_images: {name!r} has shape {tuple(image.shape)}; expected (C, H, W) with C = 1, "
            "3 or 4 (take one image of a batch with t[0])."
        )
    rgb = image.detach().float().cpu().clamp(0.0, 1.0)
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1)
    rgb = rgb[:3]
    return (rgb.mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous()).numpy()


def _image_grid(images: Mapping[str, np.ndarray]) -> bytes:
    """One row of labelled images as PNG bytes; smaller images are enlarged by an integer factor
    (nearest neighbour, so an LR input shows its pixels beside the SR output)."""
    from PIL import Image, ImageDraw

    height = max(a.shape[0] for a in images.values())
    gap, label_h = 4, 14
    tiles: list[tuple[str, Image.Image]] = []
    for name, array in images.items():
        tile = Image.fromarray(array)
        factor = height // array.shape[0]
        if factor > 1:
            tile = tile.resize(
                (tile.width * factor, tile.height * factor), Image.Resampling.NEAREST
            )
        tiles.append((name, tile))
    width = sum(t.width for _, t in tiles) + gap * (len(tiles) - 1)
    canvas = Image.new("RGB", (width, height + label_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for name, tile in tiles:
        draw.text((x + 2, 1), name, fill=(0, 0, 0))
        canvas.paste(tile, (x, label_h))
        x += tile.width + gap
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


# --- plots ----------------------------------------------------------------------------------------


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (fewer at the start), same length as ``y``."""
    if window <= 1 or y.size == 0:
        return y
    # Window sums by convolution, not differences of a running cumsum: those drift by rounding
    # and turn a constant loss into visible wiggles once the axis autoscales to it.
    sums = np.convolve(y, np.ones(window), mode="full")[: y.size]
    counts = np.minimum(np.arange(1, y.size + 1), window)
    return sums / counts


def _series(columns: Mapping[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray]:
    steps, values = columns["step"], columns[key]
    keep = np.isfinite(steps) & np.isfinite(values)
    return steps[keep], values[keep]


def _new_figure(rows: int = 1, height: float = 4.0) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, height * rows), layout="constrained")
    FigureCanvasAgg(figure)  # Agg: renders without a display, no pyplot global state
    axes = [figure.add_subplot(rows, 1, i + 1) for i in range(rows)]
    return figure, axes


def _save_figure(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_run_file(path, buffer.getvalue())


def _plot_curves(axes: Axes, columns: Mapping[str, np.ndarray], keys: Sequence[str]) -> bool:
    """Faint raw values plus their moving average for each key; log y when all positive."""
    all_positive = True
    drawn = False
    for key in keys:
        x, y = _series(columns, key)
        if x.size == 0:
            continue
        drawn = True
        all_positive = all_positive and bool(np.all(y > 0))
        window = max(1, min(100, x.size // 20))
        (line,) = axes.plot(x, y, alpha=0.2, linewidth=0.8)
        axes.plot(x, _moving_average(y, window), color=line.get_color(), linewidth=1.6, label=key)
    if drawn and all_positive:
        axes.set_yscale("log")
    return drawn


def _is_gan_generator(key: str) -> bool:
    return key == "loss_gan" or key.startswith("loss_g_")


def _is_gan_discriminator(key: str) -> bool:
    return key.startswith("loss_d")


def plot_logs(out_dir: Path) -> list[Path]:
    """Regenerate ``out_dir/plots/*.png`` from the CSV logs; return the files written."""
    out_dir = Path(out_dir)
    train = read_csv_log(out_dir / TRAIN_CSV)
    val = read_csv_log(out_dir / VAL_CSV)
    plots = out_dir / "plots"
    written: list[Path] = []

    train_losses = [k for k in train if k.startswith("loss")]
    val_losses = [k for k in val if k.startswith("loss")]
    if train_losses or val_losses:
        figure, (axes,) = _new_figure()
        drawn = _plot_curves(axes, train, train_losses) if train_losses else False
        for key in val_losses:
            x, y = _series(val, key)
            if x.size:
                drawn = True
                axes.plot(x, y, marker="o", markersize=3, linewidth=1.4, label=f"val {key}")
        if drawn:
            axes.set(xlabel="iteration", ylabel="loss", title="Training loss")
            axes.grid(True, which="both", alpha=0.3)
            axes.legend(loc="upper right", fontsize="small")
            _save_figure(figure, plots / "loss.png")
            written.append(plots / "loss.png")

    generator = [k for k in train if _is_gan_generator(k)]
    discriminator = [k for k in train if _is_gan_discriminator(k)]
    if generator or discriminator:
        groups = [
            (t, k) for t, k in (("Generator", generator), ("Discriminator", discriminator)) if k
        ]
        figure, axes_list = _new_figure(rows=len(groups), height=3.2)
        drawn = False
        for axes, (title, keys) in zip(axes_list, groups, strict=True):
            if _plot_curves(axes, train, keys):
                drawn = True
                axes.set(xlabel="iteration", ylabel="loss", title=f"{title} losses")
                axes.grid(True, which="both", alpha=0.3)
                axes.legend(loc="upper right", fontsize="small")
        if drawn:
            _save_figure(figure, plots / "gan.png")
            written.append(plots / "gan.png")

    psnr_keys = [k for k in val if "psnr" in k.lower()]
    ssim_keys = [k for k in val if "ssim" in k.lower()]
    if psnr_keys or ssim_keys:
        figure, (left,) = _new_figure()
        handles: list[Any] = []
        for key in psnr_keys:
            x, y = _series(val, key)
            if x.size:
                handles += left.plot(x, y, marker="o", markersize=3, label=key)
                best = int(np.argmax(y))
                left.annotate(
                    f"{y[best]:.2f} dB", (x[best], y[best]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize="small",
                )  # fmt: skip
        left.set(xlabel="iteration", ylabel="PSNR (dB)", title="Validation PSNR / SSIM")
        left.grid(True, alpha=0.3)
        if ssim_keys:
            right = left.twinx()
            for key in ssim_keys:
                x, y = _series(val, key)
                if x.size:
                    handles += right.plot(
                        x, y, marker="s", markersize=3, linestyle="--", label=key, color="tab:red"
                    )
            right.set_ylabel("SSIM")
        if handles:
            left.legend(handles=handles, loc="lower right", fontsize="small")
            _save_figure(figure, plots / "val_psnr_ssim.png")
            written.append(plots / "val_psnr_ssim.png")
    return written


# --- the loggers ----------------------------------------------------------------------------------


class _ClosedOnExit:
    """A logger used as a context manager: ``with`` closes it, whatever happened inside."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class TrainingLogger(_ClosedOnExit):
    """CSV logs, TensorBoard, a progress bar and PNG plots for one training run (rank 0 only).

    Args:
        out_dir: the run's folder (created if missing).
        total_iters: the run's last iteration (the progress bar's total).
        start_iter: the iteration resumed from (0 for a new run); see the module docstring.
        tensorboard: write TensorBoard event files under ``out_dir/tensorboard``.
        progress: show a tqdm progress bar (losses in its postfix; it/s and ETA from tqdm).
        plot_every_s: redraw the PNG plots after a validation at most this often (seconds of
            wall time; drawing three figures takes 1-8 s, which a fast GPU run must not spend
            at every validation); :meth:`close` always draws what is new.

    Use as a context manager, or call :meth:`close` (which also redraws the plots).
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        total_iters: int,
        start_iter: int = 0,
        tensorboard: bool = True,
        progress: bool = True,
        plot_every_s: float = 120.0,
    ) -> None:
        if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 0:
            raise ValueError(f"total_iters must be an integer >= 0; got {total_iters!r}.")
        if isinstance(start_iter, bool) or not isinstance(start_iter, int) or start_iter < 0:
            raise ValueError(f"start_iter must be an integer >= 0; got {start_iter!r}.")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.total_iters = total_iters
        self.start_iter = start_iter
        keep_until = start_iter if start_iter > 0 else None
        self._train = CsvLog(self.out_dir / TRAIN_CSV, _TRAIN_FIXED, keep_until)
        self._val = CsvLog(self.out_dir / VAL_CSV, _VAL_FIXED, keep_until)
        if start_iter == 0:  # a new run: no stale figure of an earlier run may stay behind
            for name in PLOTS:
                (self.out_dir / "plots" / name).unlink(missing_ok=True)
        self._closed = False
        self._unplotted = False  # rows logged since the plots were last drawn
        self.plot_every_s = float(plot_every_s)
        self._last_plot = time.monotonic()

        self._writer: SummaryWriter | None = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides the events an earlier run logged at steps >= purge_step: those a
            # killed run logged after its checkpoint, or all of them for a new run.
            self._writer = SummaryWriter(
                log_dir=str(self.out_dir / "tensorboard"),
                purge_step=start_iter + 1 if start_iter > 0 else 0,
            )

        self._bar: tqdm[Any] | None = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_iters, initial=start_iter, unit="it", dynamic_ncols=True, desc="train"
            )

    # logging ---------------------------------------------------------------------------------

    def log_train(self, step: int, values: Mapping[str, float], lr: float) -> None:
        """One row of training values (losses named ``loss_*``) at iteration ``step``."""
        row = format_row(step, values, _TRAIN_FIXED, lr=lr)
        self._train.write(row)
        self._unplotted = True
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"train/{key}", float(value), step)
            self._writer.add_scalar("train/lr", float(lr), step)
        if self._bar is not None:
            if step > self._bar.n:
                self._bar.update(step - self._bar.n)
            postfix = {k: f"{float(v):.4g}" for k, v in values.items()}
            postfix["lr"] = f"{float(lr):.3g}"
            self._bar.set_postfix(postfix, refresh=False)

    def log_val(self, step: int, values: Mapping[str, float]) -> None:
        """One row of validation values (``psnr``, ``ssim``, ``loss_*`` ...); the plots are
        redrawn when ``plot_every_s`` has passed since they last were."""
        row = format_row(step, values, _VAL_FIXED)
        self._val.write(row)
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"val/{key}", float(value), step)
            self._writer.flush()
        summary = ", ".join(f"{k}={float(v):.4f}" for k, v in values.items())
        _log.info("validation at iteration %d: %s", step, summary)
        self._unplotted = True
        if time.monotonic() - self._last_plot >= self.plot_every_s:
            self.plot()

    def log_images(self, step: int, images: Mapping[str, torch.Tensor]) -> Path | None:
        """TensorBoard images and ``out_dir/samples/step_{step:08d}.png`` (a labelled row).

        ``images`` maps a label (``lq``, ``sr``, ``gt`` ...) to a ``(C, H, W)`` tensor in [0, 1]
        (values outside are clamped). Returns the PNG written, or ``None`` for no images.
        """
        arrays = {name: _to_uint8_hwc(name, image) for name, image in images.items()}
        if not arrays:
            return None
        if self._writer is not None:
            for name, array in arrays.items():
                self._writer.add_image(f"samples/{name}", array, step, dataformats="HWC")
        path = self.out_dir / "samples" / f"step_{int(step):08d}.png"
        write_run_file(path, _image_grid(arrays))
        return path

    def plot(self) -> list[Path]:
        """Regenerate ``out_dir/plots/{loss,gan,val_psnr_ssim}.png`` from the CSV logs.

        Each figure is written only when its columns exist; returns the files written.
        """
        self._unplotted = False
        self._last_plot = time.monotonic()
        return plot_logs(self.out_dir)

    def close(self) -> None:
        """Redraw the plots (if rows came since the last), close CSVs, TensorBoard, progress bar."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._unplotted:
                self.plot()
        except RunOutputError as exc:  # the run's results are written; the last plot is not
            _log.warning("%s; the plots are older than the CSV logs (plot_logs redraws them)", exc)
        finally:
            self._train.close()
            self._val.close()
            if self._writer is not None:
                self._writer.close()
            if self._bar is not None:
                self._bar.close()


class NullLogger(_ClosedOnExit):
    """The :class:`TrainingLogger` interface doing nothing (ranks other than 0).

    Accepts (and ignores) the same constructor arguments, so the trainer can pick the class by rank.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        del args, kwargs

    def log_train(self, step: int, values: Mapping[str, float], lr: float) -> None:
        """Do nothing."""

    def log_val(self, step: int, values: Mapping[str, float]) -> None:
        """Do nothing."""

    def log_images(self, step: int, images: Mapping[str, torch.Tensor]) -> Path | None:
        """Do nothing; return ``None``."""
        return None

    def plot(self) -> list[Path]:
        """Do nothing; return ``[]``."""
        return []

    def close(self) -> None:
        """Do nothing."""

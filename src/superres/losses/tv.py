"""Total variation: a smoothness prior on the output alone."""

from __future__ import annotations

import torch

from superres.errors import check_choice
from superres.losses.base import BaseLoss, check_pair

__all__ = ["TotalVariationLoss"]


class TotalVariationLoss(BaseLoss):
    """Anisotropic total variation of ``sr``: the mean neighbour difference along H plus along W.

    Per image, with means over channels and positions::

        TV = mean(rho(x[:, 1:, :] - x[:, :-1, :])) + mean(rho(x[:, :, 1:] - x[:, :, :-1]))

    where ``rho = |.|`` (``criterion="l1"``, the anisotropic form of Rudin, Osher and Fatemi's TV,
    as BasicSR's ``WeightedTVLoss``) or ``rho = (.)^2`` (``"l2"``, the beta = 2 case of Mahendran
    and Vedaldi's TV^beta, CVPR 2015). A constant image scores 0.

    Args:
        criterion: ``"l1"`` or ``"l2"``.
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` gives one value per image ``(N,)``; ``"mean"``/``"sum"`` reduce those.

    ``forward(sr, gt=None)``: ``gt`` is accepted so every loss can be called as ``loss(sr, gt)``,
    and ignored.
    """

    def __init__(
        self, *, criterion: str = "l1", loss_weight: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        self.criterion = check_choice(criterion, ("l1", "l2"), "criterion", "TotalVariationLoss")

    def forward(self, sr: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        check_pair(type(self).__name__, sr, sr if gt is None else gt)
        dh = sr[:, :, 1:, :] - sr[:, :, :-1, :]
        dw = sr[:, :, :, 1:] - sr[:, :, :, :-1]
        if self.criterion == "l1":
            dh, dw = dh.abs(), dw.abs()
        else:
            dh, dw = dh.square(), dw.square()
        # An image one pixel tall has no vertical neighbours: its term is 0, not a NaN mean.
        per_image = torch.zeros(sr.shape[0], dtype=sr.dtype, device=sr.device)
        if dh.numel():
            per_image = per_image + dh.mean(dim=(1, 2, 3))
        if dw.numel():
            per_image = per_image + dw.mean(dim=(1, 2, 3))
        return self._reduce(per_image)

    def extra_repr(self) -> str:
        return f"criterion={self.criterion!r}, {super().extra_repr()}"

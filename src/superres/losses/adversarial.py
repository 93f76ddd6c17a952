"""Adversarial losses for SRGAN-style training: vanilla (SRGAN), LSGAN, hinge and RaGAN (ESRGAN).

One object serves both players of a GAN step::

    gan = GANLoss(gan_type="ragan", loss_weight=5e-3)

    # generator step (discriminator frozen)
    fake_logits = net_d(sr)
    real_logits = net_d(gt)                       # only "ragan" needs these
    loss_gan = gan.generator_loss(fake_logits, real_logits)   # already times loss_weight

    # discriminator step
    loss_d = gan.discriminator_loss(net_d(gt), net_d(sr.detach()))

``fake_logits``/``real_logits`` are the discriminator's raw outputs (no sigmoid) of any shape,
``(N, 1)`` for :class:`~superres.models.discriminator.VGGStyleDiscriminator` or ``(N, 1, h, w)``
for a patch discriminator. ``reduction="none"`` returns per-element terms (see :class:`GANLoss`
for the two-term losses); the relativistic average uses the mean over the whole other batch, as
in ESRGAN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from superres.errors import ConfigError, check_choice
from superres.losses.base import BaseLoss

__all__ = ["GAN_TYPES", "GANLoss"]

#: The accepted values of ``gan_type``.
GAN_TYPES = ("vanilla", "lsgan", "hinge", "ragan")


class GANLoss(BaseLoss):
    """Generator and discriminator losses of one GAN formulation.

    * ``"vanilla"`` -- Goodfellow et al. 2014 with the non-saturating generator loss, as SRGAN
      (Ledig et al., CVPR 2017, arXiv:1609.04802, eq. 6: ``-log D(G(x))``). Binary cross-entropy
      on logits: D minimises ``BCE(D(real), 1) + BCE(D(fake), 0)``, G minimises
      ``BCE(D(fake), 1)``.
    * ``"lsgan"`` -- Mao et al., ICCV 2017: squared errors to the labels, D ``(D(real) - 1)^2 +
      D(fake)^2``, G ``(D(fake) - 1)^2``.
    * ``"hinge"`` -- Lim and Ye 2017 / Miyato et al. 2018: D ``relu(1 - D(real)) + relu(1 +
      D(fake))``, G ``-D(fake)``.
    * ``"ragan"`` -- relativistic average GAN (Jolicoeur-Martineau, ICLR 2019) as in ESRGAN (Wang
      et al., ECCVW 2018, arXiv:1809.00219, eqs. 1-2): with ``D_Ra(a, b) = sigmoid(C(a) -
      E[C(b)])``, D minimises ``-E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))]`` and G the
      symmetric ``-E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)]``, so the generator also
      gets gradients from the real images' term.

    Scaling: both players' losses are the **mean** of their two terms, ``(L_real + L_fake) / 2``
    (the two-term generator loss only for ``"ragan"``), as ESRGAN's and BasicSR's code compute them;
    the papers write the sum. Only the generator loss is multiplied by ``loss_weight`` (the
    ``lambda`` of the recipes: 1e-3 for SRGAN, 5e-3 for ESRGAN); the discriminator loss is not
    weighted (Adam is insensitive to a constant factor).

    Label smoothing (one-sided, Salimans et al. 2016): ``real_label=0.9`` replaces the
    discriminator's real target; ``fake_label`` its fake target. Generator targets stay 1 and 0.
    Labels apply to ``"vanilla"``, ``"lsgan"`` and ``"ragan"``; ``"hinge"`` has none and rejects
    non-default values.

    Args:
        gan_type: one of :data:`GAN_TYPES`.
        real_label: the discriminator's target for real images, in (0, 1].
        fake_label: the discriminator's target for generated images, in [0, 1).
        loss_weight: multiplies :meth:`generator_loss`.
        reduction: ``"mean"`` or ``"sum"`` over logit elements (of each term, before halving),
            or ``"none"``: the per-element terms, of the logits' shape for a one-term loss; for
            a two-term loss both halved and concatenated along the batch axis, real-image terms
            first, so that their sum is the ``"sum"`` value.

    ``forward(fake_logits, real_logits=None)`` is :meth:`generator_loss`.
    """

    def __init__(
        self,
        *,
        gan_type: str = "vanilla",
        real_label: float = 1.0,
        fake_label: float = 0.0,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        self.gan_type = check_choice(gan_type, GAN_TYPES, "gan_type", "GANLoss")
        for name, value in (("real_label", real_label), ("fake_label", fake_label)):
            if not (isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 1):
                raise ConfigError(f"GANLoss: {name} must be a number in [0, 1]; got {value!r}.")
        if not fake_label < real_label:
            raise ConfigError(
                f"GANLoss: fake_label ({fake_label}) must be below real_label ({real_label})."
            )
        if gan_type == "hinge" and (real_label, fake_label) != (1.0, 0.0):
            raise ConfigError(
                "GANLoss: gan_type='hinge' has no labels to smooth; leave real_label=1.0 and "
                f"fake_label=0.0 (got {real_label}, {fake_label})."
            )
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    # --- per-element terms --------------------------------------------------------------------

    def _term(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        """The per-element loss of ``logits`` against a label (vanilla, lsgan, ragan)."""
        if self.gan_type == "lsgan":
            return (logits - target).square()
        labels = torch.full_like(logits, target)
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none")

    def _combine(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """``(first + second) / 2`` reduced; with ``"none"`` the halved terms, concatenated."""
        if self.reduction == "none":
            return torch.cat([0.5 * first, 0.5 * second], dim=0)
        return 0.5 * (self._reduce_unweighted(first) + self._reduce_unweighted(second))

    def _reduce_unweighted(self, values: torch.Tensor) -> torch.Tensor:
        if self.reduction == "mean":
            return values.mean()
        if self.reduction == "sum":
            return values.sum()
        return values

    # --- the two players ----------------------------------------------------------------------

    def generator_loss(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The generator's adversarial loss times ``loss_weight``.

        Args:
            fake_logits: ``D(G(lq))``, with the graph to the generator.
            real_logits: ``D(gt)``; required for ``"ragan"``, ignored otherwise. Detached here:
                the generator step trains only the generator.
        """
        if self.gan_type == "ragan":
            if real_logits is None:
                raise ConfigError(
                    "GANLoss(gan_type='ragan').generator_loss needs real_logits = D(gt) as well: "
                    "the relativistic loss compares fake and real logits."
                )
            real = real_logits.detach()
            value = self._combine(
                self._term(real - fake_logits.mean(), 0.0),
                self._term(fake_logits - real.mean(), 1.0),
            )
        elif self.gan_type == "hinge":
            value = self._reduce_unweighted(-fake_logits)
        else:
            value = self._reduce_unweighted(self._term(fake_logits, 1.0))
        return self.loss_weight * value

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> torch.Tensor:
        """The discriminator's loss (not multiplied by ``loss_weight``).

        Args:
            real_logits: ``D(gt)``.
            fake_logits: ``D(sr.detach())`` (detach ``sr`` so the step does not reach the
                generator).
        """
        if self.gan_type == "ragan":
            real_term = self._term(real_logits - fake_logits.mean(), self.real_label)
            fake_term = self._term(fake_logits - real_logits.mean(), self.fake_label)
        elif self.gan_type == "hinge":
            real_term = F.relu(1.0 - real_logits)
            fake_term = F.relu(1.0 + fake_logits)
        else:
            real_term = self._term(real_logits, self.real_label)
            fake_term = self._term(fake_logits, self.fake_label)
        return self._combine(real_term, fake_term)

    def forward(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.generator_loss(fake_logits, real_logits)

    def extra_repr(self) -> str:
        labels = (
            f", real_label={self.real_label:g}, fake_label={self.fake_label:g}"
            if (self.real_label, self.fake_label) != (1.0, 0.0)
            else ""
        )
        return f"gan_type={self.gan_type!r}{labels}, {super().extra_repr()}"

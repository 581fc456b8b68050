"""Model averaging: a weighted mixture of fitted purchase models (``ModelMixture``), itself a
purchase model on the contract (``MixtureSpec``)."""

from clvkit.models.mixture.model import ModelMixture
from clvkit.models.mixture.spec import MixtureSpec

__all__ = ["MixtureSpec", "ModelMixture"]

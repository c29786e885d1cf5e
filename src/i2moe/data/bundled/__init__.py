"""Real multimodal datasets shipped inside the package (no download at run time).

* ``mfeat``: UCI Multiple Features, handwritten digits in six feature views (the default).
* ``birds``: Mulan birds, bird species in 10 s audio clips; whole-clip audio descriptors and
  segment-based features (multilabel).
* ``reviews``: Women's E-Commerce Clothing Reviews; review text and shopper/product tabular
  features, predicting whether the reviewer recommends the item.

The compact copies live in ``i2moe/datasets_data`` (see its ``README.md`` for provenance and
licences); ``docs/datasets.md`` describes each dataset. Every loader takes ``seed`` and returns a
:class:`~i2moe.data.base.DataBundle` whose ``meta`` carries the citation and licence. Importing
this package registers the three loaders; :mod:`i2moe.data.registry` imports it on its first
query.
"""

from i2moe.data.bundled.birds import load_birds
from i2moe.data.bundled.mfeat import load_mfeat
from i2moe.data.bundled.reviews import load_reviews

__all__ = ["load_birds", "load_mfeat", "load_reviews"]

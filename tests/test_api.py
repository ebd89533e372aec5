"""The public Python API as a library user calls it: registries, argument checks, error types."""
from __future__ import annotations

import numpy as np
import pytest

from zeroskel.errors import ConfigError, DataError


def _tiny_problem():
    from zeroskel.methods import ClassTexts

    rng = np.random.default_rng(0)
    texts = ClassTexts(sentence=rng.normal(size=(6, 8)))
    y = np.repeat([0, 1, 2, 3], 4)
    x = rng.normal(size=(len(y), 5)) + y[:, None]
    return x, y, texts


@pytest.mark.parametrize("name", ["flora", "smie", "devise", "cada_vae"])
def test_build_method_names_an_unknown_argument(name):
    from zeroskel.methods import build_method

    # was a bare TypeError from the constructor ("__init__() got an unexpected keyword argument")
    with pytest.raises(ConfigError, match=rf"method '{name}' has no argument\(s\) 'epoch'; valid arguments: .*seed"):
        build_method(name, epoch=3)


def test_score_with_a_single_class_id_is_a_data_error():
    from zeroskel.methods import build_method

    x, y, texts = _tiny_problem()
    m = build_method("devise", epochs=1).fit(x, y, texts, [0, 1, 2, 3])
    assert m.score(x[:2], [4]).shape == (2, 1)
    assert m.score(x[:2], {4, 5}).shape == (2, 2)          # any iterable of ids
    for call in (lambda: m.score(x[:2], 4), lambda: m.predict(x[:2], 4)):
        with pytest.raises(DataError, match=r"must be a 1-D list of class ids, got shape \(\)"):
            call()                                         # was TypeError: 'int' object is not iterable
    with pytest.raises(DataError, match="seen_classes: must be a 1-D list"):
        build_method("devise", epochs=1).fit(x, y, texts, 0)

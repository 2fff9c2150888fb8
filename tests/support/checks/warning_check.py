"""A check during which a library warns (as urllib3's DependencyWarning did, imported lazily in a check's thread):
a product run must judge the check, not the warning."""

from __future__ import annotations

import warnings

import pytest


@pytest.mark.smoke
def test_a_library_warns_while_the_check_passes() -> None:
    warnings.warn("urllib3 (2.x) doesn't match a supported version", ImportWarning, stacklevel=1)
    warnings.warn("this API is deprecated", DeprecationWarning, stacklevel=1)
    assert 1 + 1 == 2

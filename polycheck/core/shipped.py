"""The folders polycheck ships beside its code: suites/, contracts/ and envs/.

In the checkout they are top-level folders next to polycheck/; an installed copy holds them inside the package
(polycheck/suites, polycheck/contracts, polycheck/envs: pyproject.toml's package-dir). One rule finds either.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # polycheck/


def shipped(name: str) -> Path:
    """The shipped folder `name` (suites, contracts or envs): inside the installed package, else the checkout's."""
    for candidate in (PACKAGE / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"polycheck ships no {name}/ folder (looked in {PACKAGE} and {PACKAGE.parent})")

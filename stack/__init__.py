"""The local PolyShop stack: the default target of polycheck and the ground truth of its self-tests.

Run it on its own with `python -m stack`. Nothing in polycheck/ or suites/ imports this package.
"""

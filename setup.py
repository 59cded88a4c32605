"""The package list: `find_packages` plus `harness.conf`, the config groups of `conf/` shipped inside
the package (pyproject.toml maps and includes them); everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["harness*", "hydra_plugins*"]), "harness.conf"])

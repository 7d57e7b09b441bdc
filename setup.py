"""Ship the top-level ``assets/`` and ``models/`` folders inside the wheel.

They are installed as the data-only packages ``sinusapp_assets`` and ``sinusapp_models``
(found at run time by :mod:`sinusapp.resources`), so an installed SinusApp has its demo study
and its bundled model without the source checkout. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["sinusapp", "sinusapp.*"]), "sinusapp_assets", "sinusapp_models"],
    package_dir={"sinusapp_assets": "assets", "sinusapp_models": "models"},
    package_data={"sinusapp": ["py.typed", "synth/nasalseg_split.json"], "sinusapp_assets": ["**/*"], "sinusapp_models": ["**/*"]},
)

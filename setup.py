"""The package list: pyproject.toml cannot map ``assets/`` to a package next to a find.

The bundled demo, weights and model cards travel in the wheel as the package ``nsv_assets``
(``engine.assets`` looks there when the source tree is not beside the code).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["engine*", "viewer*", "nsv*"]), "nsv_assets"],
    package_dir={"nsv_assets": "assets"},
    package_data={"nsv_assets": ["**/*"]},
    exclude_package_data={"nsv_assets": ["**/__pycache__/*"]},
)

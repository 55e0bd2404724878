"""Packaging glue that pyproject.toml alone cannot express.

The repository layout is fixed: `boards/` and `firmware_templates/` are data folders at the top,
beside the import packages. They ship inside the wheel as the resource packages
`shoal_resources.boards` and `shoal_resources.firmware_templates`, which
`codegen.resources` falls back to when no source checkout surrounds the installed code.
"""

from setuptools import find_packages, setup

RESOURCE_DIRS = {
    "shoal_resources.boards": "boards",
    "shoal_resources.firmware_templates": "firmware_templates",
}

setup(
    packages=find_packages(include=["codegen", "codegen.*", "host_sdk", "host_sdk.*"])
    + list(RESOURCE_DIRS),
    package_dir=RESOURCE_DIRS,
)

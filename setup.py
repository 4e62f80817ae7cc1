"""Build hook for the optional C accelerator ``erl_interop.term._speedups``.

All project metadata lives in pyproject.toml; this file only declares the extension. It is
``optional``: without a C compiler the build skips it and the pure-Python codec is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "erl_interop.term._speedups",
            ["erl_interop/term/_speedups.c"],
            optional=True,
        )
    ]
)

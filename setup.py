"""Build hook for the one compiled part of kgfuse: the path search kernel of
``PathRetriever`` (``kg/retrieval/_pathsearch.c``, CPython API only). Everything else is in
pyproject.toml. The extension is optional: without a C compiler the install still succeeds
and ``PathRetriever`` uses its numpy search (same paths, slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kgfuse.kg.retrieval._pathsearch",
            ["kg/retrieval/_pathsearch.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)

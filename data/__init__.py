"""Bundled sample data written by the kgfuse authors (see README.md in this folder).

Installed as ``kgfuse.data`` so that the sample graph and questions travel with the
package; locate files with ``importlib.resources.files("kgfuse.data")``.
"""

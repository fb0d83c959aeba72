"""kgfuse.encoders."""

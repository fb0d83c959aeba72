"""kgfuse.fusion."""

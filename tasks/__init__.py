"""kgfuse.tasks."""

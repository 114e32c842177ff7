"""The engine: plan a flow run, run it through an executor, run each task."""

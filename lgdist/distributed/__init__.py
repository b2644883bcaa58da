"""The distributed backend: supersteps as Celery chords over a shared
checkpoint store. See ``coordinator`` for the flow."""

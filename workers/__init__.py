"""Deployable graphs. A worker runs only graphs named in ``LGDIST_GRAPHS``
(default: ``support-agent=workers.support_agent:graph``)."""

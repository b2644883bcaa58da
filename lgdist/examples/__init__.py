"""Example graphs that ship with lgdist. None is served unless named in
``LGDIST_GRAPHS``: ``make demo``, ``docker-compose.yml`` and ``deploy/``
register the seed program's ``support-agent=lgdist.examples.support_agent:graph``."""

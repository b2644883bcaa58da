"""Submit, watch and resume threads on the distributed backend."""

from lgdist.client.client import Client
from lgdist.client.remote import RemoteGraph
from lgdist.errors import RunFailedError

__all__ = ["Client", "RemoteGraph", "RunFailedError"]

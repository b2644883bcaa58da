"""Submit, watch and resume threads on the distributed backend."""

from lgdist.client.client import Client
from lgdist.client.remote import RemoteGraph

__all__ = ["Client", "RemoteGraph"]

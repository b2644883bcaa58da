"""The Celery app workers run: ``celery -A lgdist.distributed.worker worker``
(``lgdist worker`` does this for you)."""

from lgdist.distributed.app import create_app
from lgdist.distributed.tasks import register_tasks

app = create_app()
register_tasks(app)

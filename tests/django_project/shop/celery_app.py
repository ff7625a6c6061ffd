"""The test project's Celery app: a real worker runs shop.tasks
(tests/test_django.py starts redis-server and the worker)."""

import os

from celery import Celery

import history_track.django.celery

app = Celery("shop", include=["shop.tasks"], broker=os.environ.get("HISTORY_TRACK_TEST_BROKER"),
             backend=os.environ.get("HISTORY_TRACK_TEST_BROKER"))
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
history_track.django.celery.connect()

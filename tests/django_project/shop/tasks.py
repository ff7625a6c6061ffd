from celery import shared_task

from .models import Order


@shared_task(name="shop.set_status")
def set_status(pk: int, status: str) -> str:
    """Writes in the worker, then enqueues a follow-up from inside the task."""
    order = Order.objects.get(pk=pk)
    order.status = status
    order.save()
    if status == "shipped":
        set_note.delay(pk, "on its way")
    return status


@shared_task(name="shop.set_note")
def set_note(pk: int, note: str) -> str:
    Order.objects.filter(pk=pk).update(note=note)
    return note

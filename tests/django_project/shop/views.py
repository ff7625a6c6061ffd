from decimal import Decimal

from django.db import connection
from django.http import HttpRequest, JsonResponse

from .models import Order


def pay(request: HttpRequest, pk: int) -> JsonResponse:
    order = Order.objects.get(pk=pk)
    order.status = "paid"
    order.save()
    order.note = "paid online"
    order.save(update_fields=["note"])
    return JsonResponse({"id": order.pk})


def cancel_new(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"updated": Order.objects.filter(status="new").update(status="cancelled")})


def create(request: HttpRequest) -> JsonResponse:
    made = Order.objects.bulk_create([Order(total=Decimal(t)) for t in ("1.00", "2.00", "3.00")])
    return JsonResponse({"ids": [o.pk for o in made]})


def raw_discount(request: HttpRequest, pk: int) -> JsonResponse:
    with connection.cursor() as cur:
        cur.execute('UPDATE shop."Orders" SET total = total - 1 WHERE id = %s', [pk])
    return JsonResponse({"id": pk})


def fail(request: HttpRequest, pk: int) -> JsonResponse:
    Order.objects.filter(pk=pk).update(status="failing")
    raise RuntimeError("the view failed after writing")

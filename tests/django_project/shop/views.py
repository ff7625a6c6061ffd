from decimal import Decimal

from django.db import connection
from django.http import HttpRequest, JsonResponse
from rest_framework.response import Response
from rest_framework.views import APIView

import history_track.django as history

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


async def apay(request: HttpRequest, pk: int) -> JsonResponse:
    """An async view: the ORM's async methods run in Django's thread."""
    # Read in the event loop before anything loaded the user (no query can run
    # here): acurrent_context() awaits it.
    seen = await history.acurrent_context()
    order = await Order.objects.aget(pk=pk)
    order.status = "paid"
    await order.asave()
    history.context(step="note")   # adds to the request's block
    order.note = "paid async"
    await order.asave(update_fields=["note"])
    return JsonResponse({"id": order.pk, "context": seen})


class _HeaderToken:
    """A token authentication for Django REST framework: 'Authorization: Token <username>'."""

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        from django.contrib.auth.models import User
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Token "):
            return None
        return (User.objects.get(username=header.removeprefix("Token ")), None)

    def authenticate_header(self, request):  # type: ignore[no-untyped-def]
        return "Token"


class ApiPay(APIView):
    """Django REST framework authenticates inside the view, after every middleware ran."""

    authentication_classes = [_HeaderToken]

    def post(self, request, pk):  # type: ignore[no-untyped-def]
        order = Order.objects.get(pk=pk)
        order.status = "paid"
        order.save()
        return Response({"id": order.pk, "user": request.user.pk})


api_pay = ApiPay.as_view()


async def ahealth(request: HttpRequest) -> JsonResponse:
    """An async view that neither writes nor reads the session."""
    return JsonResponse({"ok": True})

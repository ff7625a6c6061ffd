"""The shop's admin (tests/test_django_admin.py): Order with the history view
through the mixin, Customer through add_history(); every model's events
(EventsAdmin)."""

from django.contrib import admin

from history_track.django.admin import EventsAdmin, HistoryAdminMixin, add_history
from history_track.django.models import Events

from .models import Customer, Order


@admin.register(Order)
class OrderAdmin(HistoryAdminMixin, admin.ModelAdmin):
    list_display = ["id", "status", "total"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "full_name"]


add_history(admin.site, [Customer])
admin.site.register(Events, EventsAdmin)

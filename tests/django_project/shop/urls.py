from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/<int:pk>/pay/", views.pay),
    path("orders/cancel-new/", views.cancel_new),
    path("orders/create/", views.create),
    path("orders/<int:pk>/discount/", views.raw_discount),
    path("orders/<int:pk>/fail/", views.fail),
    path("orders/<int:pk>/apay/", views.apay),
    path("health/", views.ahealth),
    path("api/orders/<int:pk>/pay/", views.api_pay),
]

from django.urls import path

from . import views

urlpatterns = [path("<str:variant>/<int:key>/", views.save)]

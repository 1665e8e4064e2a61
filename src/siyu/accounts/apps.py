from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "siyu.accounts"
    label = "accounts"
    verbose_name = "staff and access"

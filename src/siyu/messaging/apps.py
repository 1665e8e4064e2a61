from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "siyu.messaging"
    label = "messaging"
    verbose_name = "message templates, outbox and channels"

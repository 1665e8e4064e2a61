from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "siyu.messaging"
    label = "messaging"
    verbose_name = "message templates, outbox and channels"

    def ready(self) -> None:
        from siyu.contacts.actions.merge import register_merge_hook
        from siyu.messaging.actions import move_messages_on_merge

        register_merge_hook(move_messages_on_merge)

from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "siyu.tracking"
    label = "tracking"
    verbose_name = "event collection"

    def ready(self) -> None:
        from siyu.contacts.actions.merge import register_merge_hook
        from siyu.tracking.aggregates import combine_on_merge
        from siyu.tracking.orders import move_orders_on_merge
        from siyu.tracking.resolve import move_events_on_merge

        register_merge_hook(move_events_on_merge)
        register_merge_hook(move_orders_on_merge)
        # after the two above: the survivors' aggregates plus the others'
        register_merge_hook(combine_on_merge)

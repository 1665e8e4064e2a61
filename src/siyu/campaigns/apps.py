from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "siyu.campaigns"
    label = "campaigns"
    verbose_name = "broadcasts, journeys, holdouts and their reports"

    def ready(self) -> None:
        from siyu.campaigns.journey_events import after_events_processed
        from siyu.campaigns.merging import move_campaigns_on_merge
        from siyu.contacts.actions.merge import register_merge_hook
        from siyu.tracking.resolve import register_processed_hook

        register_merge_hook(move_campaigns_on_merge)
        register_processed_hook(after_events_processed)

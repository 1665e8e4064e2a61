from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "siyu.segments"
    label = "segments"
    verbose_name = "segments, tiers and lifetime value"

    def ready(self) -> None:
        from siyu.contacts.actions.merge import register_merge_hook
        from siyu.segments.realtime import after_events_processed, move_segments_on_merge
        from siyu.tracking.resolve import register_processed_hook

        register_merge_hook(move_segments_on_merge)
        register_processed_hook(after_events_processed)

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "siyu.campaigns"
    label = "campaigns"
    verbose_name = "broadcasts, journeys, holdouts and their reports"

"""Messaging (触达): channels and their test send, message templates with the live preview,
the reach rules (frequency caps, quiet hours) and the outbox (发送记录)."""

from django.urls import path

from siyu.console.views import messaging_channels as channels
from siyu.console.views import messaging_outbox as outbox
from siyu.console.views import messaging_policy as policy
from siyu.console.views import messaging_templates as templates

M = "w/<slug:slug>/messaging/"
CH = M + "channels/<int:channel_id>/"
T = M + "templates/<int:template_id>/"

urlpatterns = [
    path(M + "channels/", channels.channel_list, name="channels"),
    path(M + "channels/new/", channels.channel_new, name="channel_new"),
    path(CH, channels.channel_detail, name="channel"),
    path(CH + "save/", channels.channel_save, name="channel_save"),
    path(CH + "test/", channels.channel_test, name="channel_test"),
    path(M + "templates/", templates.template_list, name="message_templates"),
    path(M + "templates/new/", templates.template_new, name="message_template_new"),
    path(M + "templates/preview/", templates.template_preview, name="message_template_preview"),
    path(M + "templates/contacts/", templates.template_contacts, name="message_template_contacts"),
    path(T, templates.template_detail, name="message_template"),
    path(T + "save/", templates.template_save, name="message_template_save"),
    path(T + "archive/", templates.template_archive, name="message_template_archive"),
    path(M + "reach-rules/", policy.reach_policy, name="reach_policy"),
    path(M + "reach-rules/save/", policy.reach_policy_save, name="reach_policy_save"),
    path(M + "outbox/", outbox.outbox, name="outbox"),
    path(
        "w/<slug:slug>/contacts/<int:contact_id>/messages/",
        outbox.contact_messages,
        name="contact_messages",
    ),
]

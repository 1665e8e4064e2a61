from django.conf import settings
from django.utils import translation


class ChineseFirstLocaleMiddleware:
    """The console speaks zh-Hans unless the staff member chose another language with the
    switch (a cookie). The browser's Accept-Language is ignored on purpose: operators on
    English-language systems still expect the Chinese console by default."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.supported = {code for code, _ in settings.LANGUAGES}

    def __call__(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        language = chosen if chosen in self.supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        translation.deactivate()
        return response

"""What each channel can carry, checked before anything is sent.

SMS is billed per segment. A message whose characters all fit the GSM 03.38 alphabet is sent
in 7-bit units: 160 characters in one segment, 153 per segment when concatenated. Anything
else (any Chinese character) goes as UCS-2: 70 characters in one segment, 67 per segment.
Chinese providers (Aliyun, Tencent Cloud) count the sign name 【签名】 in the length. WeCom
text messages are limited to 4,000 bytes of UTF-8 (an ordinary Chinese character is 3)."""

from dataclasses import dataclass

from siyu.core.errors import ValidationError

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")  # each takes two 7-bit units
SMS_MAX_SEGMENTS = 10  # what the providers accept in one long message
WECOM_TEXT_MAX_BYTES = 4000


@dataclass(frozen=True)
class SmsLength:
    characters: int  # as billed: UCS-2 code units, or GSM 7-bit units
    segments: int
    encoding: str  # "gsm7" or "ucs2"


def sms_length(text: str) -> SmsLength:
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text):
        units = sum(2 if c in GSM_EXTENDED else 1 for c in text)
        single, part, encoding = 160, 153, "gsm7"
    else:
        # UCS-2 counts UTF-16 code units: a character outside the BMP (emoji) takes two
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "ucs2"
    segments = 1 if units <= single else -(-units // part)
    return SmsLength(units, segments, encoding)


def check_sms(text: str, sign_name: str = "", field: str = "body") -> SmsLength:
    """The billed length of an SMS with its sign name; a 422 when empty or too long."""
    if not text.strip():
        raise ValidationError(field, "the message is empty")
    length = sms_length(f"【{sign_name}】{text}" if sign_name else text)
    if length.segments > SMS_MAX_SEGMENTS:
        raise ValidationError(
            field,
            "%(n)s characters make %(segments)s SMS segments; at most %(max)s",
            {"n": length.characters, "segments": length.segments, "max": SMS_MAX_SEGMENTS},
        )
    return length


def check_wecom_text(text: str, field: str = "body") -> int:
    """The UTF-8 size of a WeCom text message; a 422 when empty or over 4,000 bytes."""
    if not text.strip():
        raise ValidationError(field, "the message is empty")
    size = len(text.encode("utf-8"))
    if size > WECOM_TEXT_MAX_BYTES:
        raise ValidationError(
            field,
            "%(n)s bytes; a WeCom text message holds at most %(max)s",
            {"n": size, "max": WECOM_TEXT_MAX_BYTES},
        )
    return size

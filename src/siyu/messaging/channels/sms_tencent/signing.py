"""Tencent Cloud API signature v3, TC3-HMAC-SHA256 (云 API › 签名方法 v3), for a POST with a
JSON body. The headers signed are content-type and host, as in the documentation's example.

    CanonicalRequest = "POST\\n/\\n\\n" + "content-type:<ct>\\nhost:<host>\\n" + "\\n"
                       + "content-type;host\\n" + hex(sha256(payload))
    StringToSign     = "TC3-HMAC-SHA256\\n" + timestamp + "\\n" + CredentialScope + "\\n"
                       + hex(sha256(CanonicalRequest))
    CredentialScope  = <UTC date of timestamp> + "/" + service + "/tc3_request"
    SigningKey       = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
    Authorization    = "TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, "
                       "SignedHeaders=content-type;host, Signature=" + hex(HMAC(key, StringToSign))
"""

import datetime
import hashlib
import hmac

ALGORITHM = "TC3-HMAC-SHA256"
SIGNED_HEADERS = "content-type;host"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    # the date of the UTC day: a UTC+8 date would break every call between 00:00 and 08:00
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d")


def canonical_request(host: str, content_type: str, payload: bytes) -> str:
    # header values are lowercased and trimmed, like their names
    headers = f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    return f"POST\n/\n\n{headers}\n{SIGNED_HEADERS}\n{sha256_hex(payload)}"


def string_to_sign(timestamp: int, scope: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{sha256_hex(canonical.encode())}"


def signature(secret_key: str, date: str, service: str, to_sign: str) -> str:
    key = _hmac(f"TC3{secret_key}".encode(), date)
    key = _hmac(_hmac(key, service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    content_type: str,
    payload: bytes,
    timestamp: int,
) -> str:
    """The Authorization header for a POST of `payload` to `host`."""
    date = utc_date(timestamp)
    scope = f"{date}/{service}/tc3_request"
    to_sign = string_to_sign(timestamp, scope, canonical_request(host, content_type, payload))
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={SIGNED_HEADERS}, "
        f"Signature={signature(secret_key, date, service, to_sign)}"
    )

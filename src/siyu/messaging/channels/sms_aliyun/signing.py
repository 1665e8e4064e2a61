"""Aliyun's RPC signature, version 1.0 (HMAC-SHA1), as the SMS API documents it
(短信服务 › HTTP协议及签名; Alibaba Cloud "Request syntax and signature method V2 for RPC APIs").

1. Sort every request parameter except `Signature` by name.
2. Percent-encode names and values in UTF-8: A-Z a-z 0-9 - _ . ~ stay, everything else
   becomes %XY with uppercase hex (so a space is %20, `*` is %2A, `~` stays).
3. Join them as `name=value` with `&`: the canonicalized query string.
4. StringToSign = METHOD + "&" + percentEncode("/") + "&" + percentEncode(canonical).
5. Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)).
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote


def percent_encode(value: str) -> str:
    # quote() keeps letters, digits and "_.-" already; "~" is the one more Aliyun keeps
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()

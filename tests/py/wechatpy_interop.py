"""Independent WeChat crypto for interop tests: wechatpy (PyPI) behind a JSON stdin/stdout shim.

Input: one JSON object per run.
  {"op": "encrypt", "token", "encoding_aes_key", "appid", "xml", "nonce", "timestamp"}
     -> {"envelope": "<xml>...</xml>"}   (wechatpy's encrypted reply envelope)
  {"op": "decrypt", "token", "encoding_aes_key", "appid", "envelope", "msg_signature", "timestamp", "nonce"}
     -> {"plain": "..."} or {"error": "<exception class>"}
"""
import json
import sys

from wechatpy.crypto import WeChatCrypto


def main():
    req = json.load(sys.stdin)
    crypto = WeChatCrypto(req["token"], req["encoding_aes_key"], req["appid"])
    if req["op"] == "encrypt":
        out = {"envelope": crypto.encrypt_message(req["xml"], req["nonce"], req["timestamp"])}
    elif req["op"] == "decrypt":
        try:
            plain = crypto.decrypt_message(req["envelope"], req["msg_signature"], req["timestamp"], req["nonce"])
            out = {"plain": plain if isinstance(plain, str) else plain.decode("utf-8")}
        except Exception as exc:  # report which check failed, as the Rust side does
            out = {"error": type(exc).__name__}
    else:
        raise SystemExit("unknown op")
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

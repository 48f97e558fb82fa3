"""Passive replies checked by wechatpy (PyPI): decrypts wxopen's encrypted reply envelope and
compares its XML with wechatpy's own rendering of the same reply.

Input (JSON on stdin):
  {"token", "encoding_aes_key", "appid", "envelope", "msg_signature", "timestamp", "nonce",
   "expected": {"type": "text"|"image"|"voice"|"video"|"music"|"news"|"transfer_customer_service",
                "to", "from", "create_time", ...the reply's fields as in wxopen's hook answer}}
Output: {"plain": decrypted XML, "ours": xmltodict of it, "wechatpy": xmltodict of wechatpy's
         rendering (null when wechatpy's own XML does not parse: it leaves "]]>" unsplit),
        "deserialized": MsgType wechatpy.replies.deserialize_reply read, or null}
        or {"error": "<exception class>"} when decryption fails.
"""
import json
import sys

import xmltodict
from wechatpy import replies
from wechatpy.crypto import WeChatCrypto


def wechatpy_reply(exp):
    common = dict(target=exp["to"], source=exp["from"], time=exp["create_time"])
    kind = exp["type"]
    if kind == "text":
        return replies.TextReply(content=exp["content"], **common)
    if kind == "image":
        return replies.ImageReply(media_id=exp["media_id"], **common)
    if kind == "voice":
        return replies.VoiceReply(media_id=exp["media_id"], **common)
    if kind == "video":
        r = replies.VideoReply(**common)
        r.media_id = exp["media_id"]
        for k in ("title", "description"):
            if k in exp:
                setattr(r, k, exp[k])
        return r
    if kind == "music":
        r = replies.MusicReply(**common)
        r.thumb_media_id = exp["thumb_media_id"]
        for k in ("title", "description", "music_url", "hq_music_url"):
            if k in exp:
                setattr(r, k, exp[k])
        return r
    if kind == "news":
        r = replies.ArticlesReply(**common)
        for a in exp["articles"]:
            r.add_article({"title": a["title"], "description": a.get("description", ""),
                           "image": a.get("pic_url", ""), "url": a.get("url", "")})
        return r
    if kind == "transfer_customer_service":
        return replies.TransferCustomerServiceReply(**common)
    raise SystemExit("unknown reply type " + kind)


def main():
    req = json.load(sys.stdin)
    crypto = WeChatCrypto(req["token"], req["encoding_aes_key"], req["appid"])
    try:
        plain = crypto.decrypt_message(req["envelope"], req["msg_signature"], req["timestamp"], req["nonce"])
    except Exception as exc:  # report which check failed
        json.dump({"error": type(exc).__name__}, sys.stdout)
        return
    plain = plain if isinstance(plain, str) else plain.decode("utf-8")
    theirs = wechatpy_reply(req["expected"]).render()
    try:
        deserialized = replies.deserialize_reply(plain).type
    except Exception:  # wechatpy cannot read every shape back (one-article news)
        deserialized = None
    try:
        theirs = xmltodict.parse(theirs)
    except Exception:  # wechatpy does not split "]]>" inside CDATA: its XML is broken then
        theirs = None
    json.dump({"plain": plain, "ours": xmltodict.parse(plain), "wechatpy": theirs,
               "deserialized": deserialized}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

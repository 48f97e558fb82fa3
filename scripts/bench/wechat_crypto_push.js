// wechat-crypto (npm) on the push path: extract Encrypt, check the signature, decrypt, check
// the receive id, extract the fields (regular expressions: Node has no XML parser of its own),
// on the inputs the Rust bench wrote. Prints {"name": ns_per_message}.
const fs = require('fs');
const WXBizMsgCrypt = require('wechat-crypto');

const data = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const seconds = Number(process.argv[3] || 3);
const crypto = new WXBizMsgCrypt(data.token, data.encoding_aes_key, data.appid);

function field(xml, tag) {
  const m = xml.match(new RegExp('<' + tag + '>(?:<!\\[CDATA\\[)?([\\s\\S]*?)(?:\\]\\]>)?</' + tag + '>'));
  return m ? m[1] : undefined;
}

function handle(c) {
  const encrypt = field(c.body, 'Encrypt');
  if (crypto.getSignature(data.timestamp, data.nonce, encrypt) !== c.msg_signature) throw new Error('signature');
  const { message, id } = crypto.decrypt(encrypt);
  if (id !== data.appid) throw new Error('appid');
  const out = {};
  for (const tag of ['AppId', 'CreateTime', 'InfoType', 'ComponentVerifyTicket', 'AuthorizerAppid', 'AuthorizationCode', 'AuthorizationCodeExpiredTime', 'PreAuthCode']) {
    out[tag] = field(message, tag);
  }
  return out;
}

const result = {};
for (const c of data.cases) {
  if (handle(c).AppId !== data.appid) throw new Error('parse');
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const start = process.hrtime.bigint();
    const until = start + BigInt(Math.round(seconds / 5 * 1e9));
    while (process.hrtime.bigint() < until) {
      for (let i = 0; i < 100; i++) handle(c);
      n += 100;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / n);
  }
  result[c.name] = best;
}
console.log(JSON.stringify(result));

// node:http2 client for interop tests: node client.mjs <port> <bytes>
// GETs /, POSTs <bytes> to /echo, prints a JSON summary.
import http2 from "node:http2";
import { createHash } from "node:crypto";

const [port, bytes] = [Number(process.argv[2]), Number(process.argv[3])];
const session = http2.connect(`http://127.0.0.1:${port}`);
session.on("error", (e) => {
  process.stdout.write(JSON.stringify({ error: String(e) }) + "\n");
  process.exit(1);
});

function request(headers, body) {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    const chunks = [];
    let status;
    let trailers = {};
    req.on("response", (h) => (status = h[":status"]));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve({ status, body: Buffer.concat(chunks), trailers }));
    req.on("error", reject);
    if (body !== undefined) {
      let offset = 0;
      const pump = () => {
        while (offset < body.length) {
          const piece = body.subarray(offset, offset + 65536);
          offset += piece.length;
          if (!req.write(piece)) return req.once("drain", pump);
        }
        req.end();
      };
      pump();
    }
  });
}

const get = await request({ ":method": "GET", ":path": "/hello" });
const payload = Buffer.alloc(bytes);
for (let i = 0; i < bytes; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
const echo = await request({ ":method": "POST", ":path": "/echo" }, payload);
const sha = (b) => createHash("sha256").update(b).digest("hex");
process.stdout.write(
  JSON.stringify({
    getStatus: get.status,
    getBody: get.body.toString(),
    echoStatus: echo.status,
    echoBytes: echo.body.length,
    echoMatch: sha(echo.body) === sha(payload),
    trailers: echo.trailers,
  }) + "\n",
);
session.close();

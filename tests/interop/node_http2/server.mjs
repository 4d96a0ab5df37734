// node:http2 h2c server for interop tests: GET / says hello, POST /echo echoes with trailers.
// Prints "PORT <n>" once listening; exits when stdin closes.
import http2 from "node:http2";

const server = http2.createServer({ settings: { initialWindowSize: 1 << 20 } });
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":path"] === "/echo") {
    stream.respond({ ":status": 200 }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "x-node": "trailer" }));
    stream.pipe(stream);
  } else {
    stream.respond({ ":status": 200, "content-type": "text/plain" });
    stream.end("hello from node");
  }
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.on("end", () => {
  server.close();
  process.exit(0);
});
process.stdin.resume();

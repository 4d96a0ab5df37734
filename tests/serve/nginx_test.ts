/**
 * nginx (Debian `nginx-light`) with `grpc_pass` between the front and the storage
 * server's V3 port: PostUploadPackV3 is plain gRPC over HTTP/2, so an L7 proxy can sit
 * in between (the sidechannel's yamux cannot pass one, Gitaly's known limitation).
 */

import assert from "node:assert/strict";
import {
  generateRepo,
  MEDIUM_REPO_DIR,
  MEDIUM_SPEC,
  referenceRepo,
  SMALL_SPEC,
} from "../../bench/_reference_repo.ts";
import { GitalyUpstream, type StorageLogEntry, StorageServer } from "../../mod.ts";
import { hasCommand, ignoreUnless } from "../_util.ts";
import { noGit } from "../git/_git.ts";
import { addCommit, borrowRepo, git, serveFront, waitFor } from "./_harness.ts";
import { step } from "./_stack.ts";

/** nginx from PATH, or Debian's /usr/sbin/nginx (not on a non-root user's PATH). */
const NGINX: string | null = hasCommand("nginx") ? "nginx" : (() => {
  try {
    return Deno.statSync("/usr/sbin/nginx").isFile ? "/usr/sbin/nginx" : null;
  } catch {
    return null;
  }
})();
const noNginx = NGINX === null && ignoreUnless("nginx");

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** nginx on 127.0.0.1:`port` passing every request to `upstreamPort` with grpc_pass (h2c both sides). */
async function startNginx(dir: string, port: number, upstreamPort: number) {
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) await Deno.mkdir(`${dir}/${sub}`);
  // Workers of a root master run as nobody: let them into the temp directories.
  await Deno.chmod(dir, 0o755);
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) await Deno.chmod(`${dir}/${sub}`, 0o777);
  const config = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} http2;
    client_max_body_size 0;
    location / {
      grpc_pass grpc://127.0.0.1:${upstreamPort};
      grpc_read_timeout 300s;
      grpc_send_timeout 300s;
    }
  }
}
`;
  await Deno.writeTextFile(`${dir}/nginx.conf`, config);
  const child = new Deno.Command(NGINX!, {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`, "-g", "daemon off;"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const up = await waitFor(async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      return false;
    }
  }, 10_000);
  if (!up) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(
      `nginx did not start: ${await stderr} ${await Deno.readTextFile(`${dir}/error.log`).catch(() => "")}`,
    );
  }
  return {
    async stop() {
      child.kill("SIGTERM"); // fast shutdown
      await child.status;
      await stderr;
    },
  };
}

Deno.test({
  name: "front (v3) through nginx grpc_pass to the V3 port: clone v0/v2, fetch, a 61 MiB clone, fsck",
  ignore: noGit || noNginx,
  async fn(t) {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-nginx-" }));
    const repo = await generateRepo(`${root}/storage/repo.git`, SMALL_SPEC);
    const rpcs: StorageLogEntry[] = [];
    const server = await StorageServer.start({
      storages: { default: `${root}/storage` },
      v3Port: 0,
      onLog: (e) => rpcs.push(e),
    });
    await Deno.mkdir(`${root}/nginx`);
    const nginxPort = freePort();
    const nginx = await startNginx(`${root}/nginx`, nginxPort, server.v3Addr!.port);
    // The pool's V3 address is nginx; the main port is never dialled for the v3 transport.
    const upstream = new GitalyUpstream({ port: server.addr.port, v3: { port: nginxPort } });
    const front = serveFront({ upstream, transport: "v3" });
    try {
      for (const v of ["0", "2"]) {
        await step(t, `git clone -c protocol.version=${v} through nginx, fsck`, async () => {
          const dir = `${root}/clone-v${v}`;
          await git(["-c", `protocol.version=${v}`, "clone", "-q", `${front.url}/repo.git`, dir]);
          await git(["-C", dir, "fsck", "--strict", "--no-dangling"]);
          assert.equal(await git(["-C", dir, "rev-parse", "origin/side"]), repo.side);
        });
      }
      await step(t, "git fetch of new commits through nginx", async () => {
        const head = await addCommit(repo.path, "through-nginx.txt", "proxied\n");
        await git(["-C", `${root}/clone-v2`, "fetch", "-q"]);
        assert.equal(await git(["-C", `${root}/clone-v2`, "rev-parse", "origin/main"]), head);
      });
      await step(t, "a ≈ 61 MiB pack through nginx (flow control both hops)", async () => {
        const medium = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
        await borrowRepo(medium.path, `${root}/storage/big.git`);
        const dir = `${root}/big`;
        await git(["clone", "-q", "--bare", `${front.url}/big.git`, dir]);
        assert.equal(await git(["-C", dir, "rev-parse", "main"]), medium.head);
        await git(["-C", dir, "fsck", "--connectivity-only", "--no-dangling"]);
      });
      await step(t, "every call went through nginx to the V3 port", async () => {
        const access = await Deno.readTextFile(`${root}/nginx/access.log`);
        assert.match(access, /POST \/gitaly\.SmartHTTPService\/PostUploadPackV3 HTTP\/2\.0" 200/);
        assert.match(access, /POST \/gitaly\.SmartHTTPService\/InfoRefsUploadPack HTTP\/2\.0" 200/);
        assert.deepEqual(upstream.stats(), { backchannelConnects: 0, http2Connects: 0, v3Connects: 1 });
        const v3 = rpcs.filter((r) => r.method === "/gitaly.SmartHTTPService/PostUploadPackV3");
        assert.ok(v3.length >= 4 && v3.every((r) => r.status === "OK"));
      });
    } finally {
      await front.close();
      await upstream.close();
      await nginx.stop();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});

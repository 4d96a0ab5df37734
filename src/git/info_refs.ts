/**
 * The smart-HTTP reference advertisement (`GET info/refs?service=git-upload-pack`) as
 * a stream, as Gitaly's `InfoRefsUploadPack` produces it.
 *
 * @module
 */

import { infoRefsError } from "./errors.ts";
import { spawnUploadPack, type UploadPack, type UploadPackOptions } from "./upload_pack.ts";

/**
 * The pkt-line service announcement that starts a smart-HTTP advertisement:
 * `001e# service=git-upload-pack\n0000`.
 *
 * @example
 * ```ts
 * import { UPLOAD_PACK_SERVICE_HEADER } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(UPLOAD_PACK_SERVICE_HEADER), "001e# service=git-upload-pack\n0000");
 * ```
 */
export const UPLOAD_PACK_SERVICE_HEADER: Uint8Array = new TextEncoder().encode(
  "001e# service=git-upload-pack\n0000",
);

/** Options for {@linkcode infoRefsUploadPack}: those of `spawnUploadPack` that apply. */
export type InfoRefsOptions = Omit<
  UploadPackOptions,
  "statelessRpc" | "advertiseRefs" | "stdin" | "negotiationTimeout"
>;

/**
 * Streams the smart-HTTP advertisement of a repository: the service announcement
 * ({@linkcode UPLOAD_PACK_SERVICE_HEADER}), then the output of
 * `git upload-pack --stateless-rpc --advertise-refs`.
 *
 * With `gitProtocol: "version=2"` git prints its capability advertisement
 * (`version 2`, `ls-refs`, `fetch=…`) instead of references. Gitaly sends the service
 * announcement for every protocol version, unlike `git http-backend`, which leaves it
 * out for v2; clients accept both, and this follows Gitaly.
 *
 * Backpressure reaches git. The stream errors with a `GrpcError` from
 * `infoRefsError` when git fails (`INTERNAL` `wait: exit status 128`) or cannot start
 * (`INTERNAL` `cmd: …`), and with the signal's reason as a status when aborted.
 * Cancelling it stops git.
 *
 * @param repoPath the absolute path of the git directory (see `resolveRepository`)
 * @param options protocol, configuration, signal, limits
 * @returns the advertisement
 * @throws {TypeError} For a relative `repoPath` or invalid options.
 *
 * @example
 * ```ts
 * import { infoRefsUploadPack } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "-q", "--bare", dir] }).output();
 * const v0 = await new Response(infoRefsUploadPack(dir)).text();
 * assert.equal(v0, "001e# service=git-upload-pack\n0000" + "0000");
 * const v2 = await new Response(infoRefsUploadPack(dir, { gitProtocol: "version=2" })).text();
 * assert.ok(v2.startsWith("001e# service=git-upload-pack\n0000000eversion 2\n"));
 * assert.ok(v2.includes("ls-refs"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function infoRefsUploadPack(
  repoPath: string,
  options: InfoRefsOptions = {},
): ReadableStream<Uint8Array> {
  const uploadPack: UploadPack = spawnUploadPack(repoPath, {
    ...options,
    statelessRpc: true,
    advertiseRefs: true,
  });
  const reader = uploadPack.stdout.getReader({ mode: "byob" });
  let headerSent = 0;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 64 * 1024,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = new Uint8Array(request.view!.buffer, request.view!.byteOffset, request.view!.byteLength);
      if (headerSent < UPLOAD_PACK_SERVICE_HEADER.byteLength) {
        const part = UPLOAD_PACK_SERVICE_HEADER.subarray(headerSent, headerSent + view.byteLength);
        view.set(part);
        headerSent += part.byteLength;
        request.respond(part.byteLength);
        return;
      }
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read(view);
      } catch {
        read = { done: true };
      }
      if (!read.done) {
        request.respondWithNewView(read.value);
        return;
      }
      const error = infoRefsError(await uploadPack.result);
      if (error !== undefined) {
        controller.error(error);
        return;
      }
      controller.close();
      try {
        if (read.value !== undefined) request.respondWithNewView(read.value);
        else request.respond(0);
      } catch {
        // The reader's buffer was lost with a failed read; the stream is closed anyway.
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
      await uploadPack.result;
    },
  });
}

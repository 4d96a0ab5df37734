/**
 * The client side of sidechannels: a registry of waiters, one per call, each taking the
 * stream the server opens for its id (Gitaly `internal/grpc/sidechannel/registry.go`).
 *
 * @module
 */

import { _asDirect, _readFull, _withDeadline, _writeAll } from "../backchannel/_io.ts";
import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import { SidechannelClientConn } from "./conn.ts";
import { SidechannelError } from "./errors.ts";
import { decodeSidechannelId, formatSidechannelId, SIDECHANNEL_CONFIRMATION } from "./wire.ts";

/**
 * What runs once the server has opened the call's sidechannel: typically write the
 * request, `closeWrite()`, read the response to its end. The conn is closed (FIN) when
 * it returns, or reset when it throws.
 */
export type SidechannelCallback = (conn: SidechannelClientConn) => void | Promise<void>;

/** Options for {@linkcode SidechannelRegistry}. */
export interface SidechannelRegistryOptions {
  /**
   * How long writing `ok` and reading the id may take (Gitaly: 5 s). A stream that
   * misses it is reset.
   * @default {5000}
   */
  timeout?: number;
}

/** Options for {@linkcode SidechannelRegistry.handshake}. */
export interface SidechannelHandshakeOptions {
  /** Aborting resets the stream. */
  signal?: AbortSignal;
}

const _OK = new TextEncoder().encode(SIDECHANNEL_CONFIRMATION);

/**
 * One registered call's claim on a sidechannel (Gitaly's `Waiter`).
 *
 * `REGISTERED →` (the server opens the sidechannel) `→ RUNNING` (`ok` sent, callback
 * running) `→ DONE`; or `REGISTERED →` ({@linkcode SidechannelWaiter.close}) `→ CANCELLED`.
 *
 * @example See {@linkcode SidechannelRegistry}.
 * ```ts
 * import { SidechannelRegistry } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const registry = new SidechannelRegistry();
 * const waiter = registry.register(() => {});
 * assert.equal(waiter.id, 0);
 * assert.equal(waiter.metadataValue, "0");
 * await assert.rejects(waiter.close(), { code: "CALLBACK_DID_NOT_RUN" });
 * ```
 */
export class SidechannelWaiter implements AsyncDisposable {
  /** The id the server must open the sidechannel for. */
  readonly id: number;
  readonly #registry: SidechannelRegistry;
  readonly #callback: SidechannelCallback;
  readonly #timeout: number;
  #state: "registered" | "running" | "done" | "cancelled" = "registered";
  #run: Promise<unknown> | null = null;
  #closing: Promise<void> | null = null;

  /** @internal Created by {@linkcode SidechannelRegistry.register}. */
  constructor(registry: SidechannelRegistry, id: number, callback: SidechannelCallback, timeout: number) {
    this.#registry = registry;
    this.id = id;
    this.#callback = callback;
    this.#timeout = timeout;
  }

  /** The value for the `gitaly-sidechannel-id` metadata: the id in decimal. */
  get metadataValue(): string {
    return formatSidechannelId(this.id);
  }

  /** Where the waiter is: registered, running its callback, done, or cancelled. */
  get state(): "registered" | "running" | "done" | "cancelled" {
    return this.#state;
  }

  /**
   * Deregisters the waiter and waits for its callback.
   *
   * @returns resolves when the callback ran and succeeded
   * @throws {SidechannelError} `CALLBACK_DID_NOT_RUN` if the server never opened the
   *   sidechannel; `HANDSHAKE` if `ok` could not be sent.
   * @throws {unknown} The callback's own error, as thrown.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.#state === "registered") {
      this.#registry._remove(this);
      this.#state = "cancelled";
      this.#closing = Promise.reject(
        new SidechannelError(
          "CALLBACK_DID_NOT_RUN",
          "Cannot finish sidechannel: callback de-registered without having run",
        ),
      );
    } else {
      this.#closing = this.#run!.then((error) => {
        if (error !== undefined) throw error;
      });
    }
    this.#closing.catch(() => {});
    return this.#closing;
  }

  /** Closes the waiter, ignoring its outcome (use {@linkcode SidechannelWaiter.close} to see it). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }

  /** @internal The server opened our sidechannel: confirm, then run the callback. */
  _start(conn: DuplexConn & DirectIo): void {
    this.#state = "running";
    this.#run = this.#execute(conn).finally(() => {
      this.#state = "done";
    });
  }

  /** Resolves with the error to report, or undefined. Never rejects. */
  async #execute(conn: DuplexConn & DirectIo): Promise<unknown> {
    try {
      await _withDeadline(
        this.#timeout,
        undefined,
        (reason) => conn.reset(reason),
        () => _writeAll(conn, _OK),
      );
    } catch (error) {
      conn.reset(error);
      return new SidechannelError("HANDSHAKE", "Cannot take sidechannel: send confirmation failed", {
        cause: error,
      });
    }
    const sidechannel = new SidechannelClientConn(conn);
    try {
      await this.#callback(sidechannel);
    } catch (error) {
      sidechannel.reset(error);
      return error === undefined ? new Error("Sidechannel callback threw undefined") : error;
    }
    await sidechannel.close().catch(() => {});
    return undefined;
  }
}

/**
 * The client's registry of sidechannel waiters (Gitaly's `sidechannel.Registry`).
 *
 * - {@linkcode SidechannelRegistry.register} allocates the next id (from 0, per registry)
 *   for one call; send it as `gitaly-sidechannel-id` metadata (appended).
 * - When the server opens a stream with `sidechannel` + that id, the backchannel client
 *   hands it to {@linkcode SidechannelRegistry.handshake}: the waiter is removed (one
 *   sidechannel per registration), `ok` is written, and the callback runs.
 * - An unknown (or already used) id closes the stream: the server's handshake fails and
 *   the registry is unaffected.
 *
 * @example A server opens the sidechannel; the client's callback echoes through it
 * ```ts
 * import { duplexPair, SidechannelRegistry, SidechannelServerConn } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const registry = new SidechannelRegistry();
 * const waiter = registry.register(async (conn) => {
 *   await conn.write(new TextEncoder().encode("ping"));
 *   await conn.closeWrite();
 *   assert.equal(await new Response(conn.readable).text(), "pong");
 * });
 * assert.equal(registry.waiting, 1);
 *
 * // The server side: after the magic, the stream carries the id; the client answers "ok".
 * const [clientEnd, serverEnd] = duplexPair();
 * await serverEnd.write(new Uint8Array([0, 0, 0, 0, 0, 0, 0, waiter.id]));
 * await registry.handshake(clientEnd);
 * assert.equal(registry.waiting, 0);
 * const ok = new Uint8Array(2);
 * await serverEnd.read(ok);
 * assert.equal(new TextDecoder().decode(ok), "ok");
 * const server = new SidechannelServerConn(serverEnd);
 * assert.equal(await new Response(server.readable).text(), "ping");
 * await server.write(new TextEncoder().encode("pong"));
 * await server.closeWrite();
 * await waiter.close(); // the callback succeeded
 * ```
 */
export class SidechannelRegistry {
  readonly #waiters = new Map<number, SidechannelWaiter>();
  readonly #timeout: number;
  #nextId = 0;

  /**
   * Creates an empty registry.
   *
   * @param options the handshake timeout
   */
  constructor(options: SidechannelRegistryOptions = {}) {
    const timeout = options.timeout ?? 5000;
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new RangeError(
        `Cannot create sidechannel registry: timeout must be a non-negative integer, received ${timeout}`,
      );
    }
    this.#timeout = timeout;
  }

  /** How many waiters are registered and not yet taken or closed. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Registers a callback for one sidechannel and returns its waiter.
   *
   * @param callback runs with the sidechannel once the server opens it
   * @returns the waiter; send its id with the call, close it after the call
   */
  register(callback: SidechannelCallback): SidechannelWaiter {
    const id = this.#nextId++;
    const waiter = new SidechannelWaiter(this, id, callback, this.#timeout);
    this.#waiters.set(id, waiter);
    return waiter;
  }

  /**
   * Hands a stream that starts with an id (the magic already consumed) to its waiter.
   * It is the client-side `sidechannel` handshaker of a backchannel client.
   *
   * @param conn the server-opened stream, positioned after `sidechannel`; owned from now on
   * @param options an abort signal
   * @returns resolves once the stream is handed over (the callback runs on its own)
   * @throws {SidechannelError} `HANDSHAKE` if the id cannot be read; `ID_NOT_REGISTERED`.
   */
  async handshake(conn: DuplexConn, options: SidechannelHandshakeOptions = {}): Promise<void> {
    const direct = _asDirect(conn);
    const idBytes = new Uint8Array(8);
    let got: number;
    try {
      got = await _withDeadline(
        this.#timeout,
        options.signal,
        (reason) => conn.reset(reason),
        () => _readFull(direct, idBytes),
      );
    } catch (error) {
      conn.reset(error);
      throw new SidechannelError("HANDSHAKE", "Cannot take sidechannel: fail to extract sidechannel ID", {
        cause: error,
      });
    }
    if (got < 8) {
      conn.reset();
      throw new SidechannelError(
        "HANDSHAKE",
        `Cannot take sidechannel: fail to extract sidechannel ID: stream ended after ${got} bytes`,
      );
    }
    this.receive(decodeSidechannelId(idBytes), direct);
  }

  /**
   * Hands an established stream to the waiter for `id` (Gitaly's `receive`).
   *
   * @param id the id the server sent
   * @param conn the stream, positioned after the id; owned from now on
   * @throws {SidechannelError} `ID_NOT_REGISTERED` (the stream is closed, the registry unchanged).
   */
  receive(id: bigint | number, conn: DuplexConn): void {
    const key = typeof id === "bigint"
      ? (id >= 0n && id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : -1)
      : id;
    const waiter = this.#waiters.get(key);
    if (waiter === undefined) {
      void conn.close().catch(() => {});
      throw new SidechannelError("ID_NOT_REGISTERED", `Cannot take sidechannel: ID ${id} not registered`);
    }
    this.#waiters.delete(key);
    waiter._start(_asDirect(conn));
  }

  /** @internal A waiter closed before its sidechannel arrived. */
  _remove(waiter: SidechannelWaiter): void {
    if (this.#waiters.get(waiter.id) === waiter) this.#waiters.delete(waiter.id);
  }
}

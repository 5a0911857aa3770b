/**
 * Makes `app.close()` finish once the requests in flight have finished.
 *
 * Node's `server.close()` waits for every open connection. Two kinds would
 * hold it for a minute or more: connections a client opened and has not sent
 * a request on yet (HTTP clients such as undici open spares; Node does not
 * count them as idle), and keep-alive connections whose last response ends
 * after the close began. On close, the first kind is destroyed at once and
 * the second is ended as soon as its response has gone out, so a stream in
 * flight still completes.
 */
import type { Socket } from "node:net";
import type { ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";

/** Node keeps the response a socket is serving here (the same check its `closeIdleConnections` makes). */
type ServingSocket = Socket & { _httpMessage?: ServerResponse | null };

export function installGracefulClose(app: FastifyInstance): void {
  const sockets = new Set<ServingSocket>();
  app.server.on("connection", (socket: ServingSocket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  app.addHook("preClose", (done) => {
    for (const socket of sockets) {
      const response = socket._httpMessage;
      if (!response || response.writableFinished) socket.destroy();
      else response.once("finish", () => socket.end());
    }
    done();
  });
}

// A TCP proxy between the pages and the gateway, to cut the network for real:
// Chromium's offline switch does not close open websockets. `cut()` aborts
// every connection and refuses new ones until `restore()`.
import net from "node:net";

export class TcpProxy {
  constructor(listenPort, upstreamPort) {
    this.listenPort = listenPort;
    this.upstreamPort = upstreamPort;
    this.down = false;
    this.sockets = new Set();
    this.server = net.createServer((client) => this.accept(client));
  }

  start() {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.listenPort, "127.0.0.1", resolve);
    });
  }

  accept(client) {
    if (this.down) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.upstreamPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }

  cut() {
    this.down = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  restore() {
    this.down = false;
  }

  stop() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

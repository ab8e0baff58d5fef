import * as http from 'node:http';
import * as net from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it now). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** An HTTP server on 127.0.0.1 and a free port, for the protocol fakes: start gives its URL, stop drops every connection. */
export class LocalHttpServer {
  private server: http.Server | undefined;
  url = '';

  constructor(private readonly handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {}

  async start(): Promise<string> {
    this.server = http.createServer(this.handler);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }
}

/** The whole body of a request. */
export async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1/localhost, made with
 * the machine's `openssl` (kubectl sends no bearer token over plain http, so the Kubernetes fake
 * serves HTTPS; clients trust the CA through the kubeconfig's certificate-authority-data).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { tmpDir } from './tmp';

export interface TestCert {
  /** PEM of the CA certificate. */
  ca: string;
  /** PEM of the server certificate and its key. */
  cert: string;
  key: string;
}

let cached: TestCert | undefined;

/** One CA and server certificate per test process (made on first use, about 100 ms). */
export function testCert(): TestCert {
  if (cached) return cached;
  const dir = tmpDir('tether-ca-');
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=tether-test-ca');
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext.cnf'));
  cached = { ca: fs.readFileSync(f('ca.crt'), 'utf8'), cert: fs.readFileSync(f('server.crt'), 'utf8'), key: fs.readFileSync(f('server.key'), 'utf8') };
  fs.rmSync(dir, { recursive: true, force: true });
  return cached;
}
